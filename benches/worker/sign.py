"""Prints the form body and X-Twilio-Signature of the bench's signed SMS fallback request for a URL.

    python3 benches/worker/sign.py URL TOKEN   ->   two lines: body, signature
The request is the shared bench fixture (22 parameters as Twilio sends them, ErrorCode/ErrorUrl
included); the signature follows Twilio's rule (URL + sorted name/value pairs, HMAC-SHA1, base64).
"""
import base64, hashlib, hmac, json, pathlib, sys, urllib.parse

url, token = sys.argv[1], sys.argv[2]
root = pathlib.Path(__file__).resolve().parents[2]
fixture = json.loads((root / "crates/twiml-fallback/benches/fixtures/bench-inputs.json").read_text())
pairs = [tuple(pair) for pair in fixture["sms_fallback"]["params"]]
data = url + "".join(name + value for name, value in sorted(pairs))
signature = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()
print(urllib.parse.urlencode(pairs))
print(signature)
