"""Writes the fuzz targets' seed corpus (fuzz/seeds/<target>/): TwiML documents (the examples, the
defaults, the shapes Twilio sees), real webhook bodies (the bench fixture, a voice fallback, the
DESIGN section 3 parameters), the DESIGN section 3 signature vectors, configurations, and whole
fallback requests. Re-run after changing it: python3 fuzz/make-seeds.py
"""
import json
import pathlib
import shutil
import urllib.parse

root = pathlib.Path(__file__).resolve().parent
repo = root.parent
seeds = root / "seeds"
if seeds.exists():
    shutil.rmtree(seeds)


def put(target, name, data):
    directory = seeds / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# TwiML documents.
for path in sorted((repo / "crates/twiml-fallback/examples/twiml").glob("*.xml")):
    put("twiml_validate", path.stem, path.read_bytes())
documents = {
    "default-voice": '<?xml version="1.0" encoding="UTF-8"?><Response><Say>An application error has occurred. Please call back later.</Say></Response>',
    "default-sms": "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>We're sorry. We are currently experiencing difficulties. Please try again later.</Message></Response>",
    "empty": "<Response/>",
    "gather": '<Response><Gather input="dtmf speech" action="/next" numDigits="1" timeout="5"><Say voice="Polly.Joanna" language="en-US">Press 1 <break time="500ms"/> for <emphasis>sales</emphasis>.</Say><Play loop="2">https://example.com/a.mp3</Play></Gather><Redirect method="POST">/voice</Redirect></Response>',
    "dial": '<Response><Dial callerId="+14155550100" timeout="20"><Number sendDigits="wwww1928">+14155550199</Number></Dial><Hangup/></Response>',
    "message-media": '<Response><Message to="+14155550100"><Body>Order &amp; pickup at 5 &lt;today&gt;</Body><Media>https://example.com/a.png</Media></Message></Response>',
    "entities": "<Response><Say>&#x1F370; &#65; &amp; &quot; &apos; &lt;&gt;</Say></Response>",
    "cdata-comment-pi": '<?xml version="1.0"?><!-- c --><Response><Say><![CDATA[a < b]]></Say><?pi x?></Response>',
    "lowercase": "<response><say>hi</say></response>",
    "mixed": "<Response><Say>hi</Say><Message>sms</Message></Response>",
    "doctype": '<!DOCTYPE Response [<!ENTITY x "y">]><Response><Say>&x;</Say></Response>',
    # Found by fuzzing: with a byte-order mark, resolve_relative_urls put its edits 3 bytes early.
    "regression-bom-rebase": '\ufeff<Response><Play loop="2">a.mp3</Play><Redirect method="POST">/voice</Redirect></Response>',
    # Found by fuzzing: an element inside <Play> text made overlapping edits, and slicing panicked.
    "regression-element-in-url-text": '<Response><Play>a<x url="cb"/>b</Play><Message><Media>img/<y action="next"/>.png</Media></Message></Response>',
    # Found by property testing: nested <Gather>s overflowed the outline's stack.
    "regression-deep-gather": "<Response>" + "<Gather>" * 3000 + "</Gather>" * 3000 + "</Response>",
}
for name, document in documents.items():
    put("twiml_validate", name, document)

# Webhook bodies as Twilio sends them.
fixture = json.loads((repo / "crates/twiml-fallback/benches/fixtures/bench-inputs.json").read_text())
sms_form = urllib.parse.urlencode([tuple(pair) for pair in fixture["sms_fallback"]["params"]])
voice_pairs = [
    ("AccountSid", "AC00000000000000000000000000000000"), ("ApiVersion", "2010-04-01"),
    ("CallSid", "CA11111111111111111111111111111111"), ("CallStatus", "ringing"), ("Called", "+14155550177"),
    ("Caller", "+14155550100"), ("Direction", "inbound"), ("From", "+14155550100"), ("To", "+14155550177"),
    ("ErrorCode", "11200"), ("ErrorUrl", "https://app.example.com/voice?x=1"),
]
voice_form = urllib.parse.urlencode(voice_pairs)
# The DESIGN section 3 signature vectors, from the tests' fixture (written down there only).
signature_fixture = json.loads((repo / "crates/twiml-fallback/tests/fixtures/sdk-signature-vectors.json").read_text())
by_id = {vector["id"]: vector for vector in signature_fixture["vectors"]}
design_vectors = [by_id[id_] for id_ in signature_fixture["design"]]


def form_of(vector):
    return urllib.parse.urlencode([tuple(pair) for pair in vector["params"]])


design_form = form_of(by_id["base"])
repeated_form = form_of(by_id["dup_values_sorted_dedup"])
for name, form in [
    ("sms-fallback", sms_form), ("voice-fallback", voice_form), ("design-vector", design_form),
    ("repeated", repeated_form), ("escapes", "Body=%F0%9F%8D%B0+%26+%25zz+%C3&%E2%82=x&=&&a"),
    # Found by fuzzing: channel_of_form and Params::channel disagreed on a repeated key whose
    # first value is empty.
    ("regression-first-occurrence", "CallSid&Body=x&CallSid=CA1&MessageSid=&MessageSid=SM1"),
]:
    put("webhook_params", name, form)

# DESIGN section 3 vectors: URL \n TOKEN \n SIGNATURE \n FORM (or JSON body).
vectors = [
    (vector["url"], vector["token"], vector["signature"],
     vector["body"] if vector["body"] is not None else form_of(vector))
    for vector in design_vectors
] + [("http://[::1]:8080/voice", "12345", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", voice_form)]
for index, (url, token, signature, form) in enumerate(vectors):
    put("signature", f"design-{index}", f"{url}\n{token}\n{signature}\n{form}")

# Configurations (the README's schema), TOML and JSON.
put("config", "full.toml", """[voice]
say = "We're having trouble. Please call back."
voice = "Polly.Joanna"
language = "en-US"
[messaging]
message = "We'll reply soon."
media = ["https://example.com/sorry.png"]
[numbers."+14155550199".voice]
play = "https://example.com/sorry.mp3"
[numbers."+14155550188".messaging]
twiml = "<Response/>"
[alerts]
webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"
dedup_seconds = 300
[recovery]
allow_hosts = ["app.example.com", "*.example.org", "10.0.0.1:8443"]
timeout_ms = 4000
allow_http = false
""")
put("config", "voice-twiml.toml", '[voice]\ntwiml = "<Response><Say>Sorry</Say><Hangup/></Response>"\n')
put("config", "full.json", json.dumps({
    "voice": {"say": "Hi <there>", "loop": 2}, "messaging": {"message": "x"},
    "numbers": {"+14155550100": {"voice": {"say": "y"}}}, "alerts": {"webhook_url": "https://a.example.com"},
}))
put("config", "empty", "")

# Whole fallback requests: METHOD TARGET \n FLAG CONTENT-TYPE \n BODY [\n PRIMARY'S ANSWER].
form_type = "application/x-www-form-urlencoded"
recovery_form = urllib.parse.urlencode(voice_pairs[:-1] + [("ErrorUrl", "https://app.example.com/voice")])
per_number_form = urllib.parse.urlencode([(k, "+14155550199" if k == "To" else v) for k, v in voice_pairs])
for name, request in [
    ("sms-signed", f"POST /twilio/sms\nS {form_type}\n{sms_form}"),
    ("voice-signed", f"POST /voice?x=1\nS {form_type}\n{voice_form}"),
    ("voice-recovery", f"POST /voice\nS {form_type}\n{recovery_form}"),
    ("voice-recovery-relative", f"POST /voice\nS {form_type}\n{recovery_form}\n"
        '<Response><Gather action="next"><Play>a<x url="cb"/>b</Play></Gather><Redirect>/menu</Redirect></Response>'),
    ("per-number", f"POST /voice\nS {form_type}\n{per_number_form}"),
    ("get-signed", f"GET /voice?{voice_form}\nS \n"),
    # numbers audit --probe: signed, allowlisted ErrorUrl, and still nothing but the log record.
    ("probe-recovery", f"POST /voice\nS {form_type}\n{recovery_form}&TwimlFallbackProbe=probe-1a2b3c4d5e6f7a8b\n"
        "<Response><Say>Back</Say></Response>"),
    ("probe-get", f"GET /sms?{sms_form}&TwimlFallbackProbe=probe-1a2b3c4d5e6f7a8b\nS \n"),
    ("forged", f"POST /voice\nZm9yZ2Vk\n{voice_form}"),
    ("unsigned-json", 'POST /voice\nN application/json\n{"CallSid": "CA1"}'),
    ("too-large", f"POST /voice\nL {form_type}\n"),
]:
    put("edge_decide", name, request)

print(f"{sum(1 for path in seeds.rglob('*') if path.is_file())} seed files in {seeds}")


# Admin API requests: METHOD URL \n AUTHORIZATION (T: the right token) \n BODY.
admin_requests = {
    "list": "GET /_twiml-fallback/inbox?status=pending&channel=messaging&limit=10\nT\n",
    "list-cursor": "GET /_twiml-fallback/inbox?cursor=1700000000000.SM1\nT\n",
    "show": "GET /_twiml-fallback/inbox/SM0123456789abcdef0123456789abcdef\nT\n",
    "dismiss": "POST /twilio/_twiml-fallback/inbox/SM1/dismiss\nT\n",
    "capture": 'POST /_twiml-fallback/inbox\nT\n{"channel":"messaging","url":"/sms","method":"POST","params":[["MessageSid","SM1"],["Body","hi"]],"cause":"panic","error_code":11200}',
    "capture-callback": 'POST /_twiml-fallback/inbox\nT\n{"url":"/sms","params":[["MessageSid","SM1"],["MessageStatus","sent"]]}',
    "basic": "GET /_twiml-fallback/inbox\nBasic b3BzOmZ1enotYWRtaW4tdG9rZW4=\n",
    "wrong": "GET /_twiml-fallback/inbox\nBearer nope\n",
    "unauthenticated": "POST /_twiml-fallback/inbox\n\n{}",
    "not-admin": "POST /voice\nT\nCallSid=CA1",
}
for name, request in admin_requests.items():
    put("admin_route", name, request)
