"""Differential signature test, Python side: twilio-python's RequestValidator on the cases the Rust
test generates (JSON lines on stdin, one result line per case on stdout)."""
import json
import sys

from multidict import MultiDict
from twilio.request_validator import RequestValidator


def main() -> None:
    for line in sys.stdin:
        case = json.loads(line)
        validator = RequestValidator(case["token"])
        params = MultiDict([(k, v) for k, v in case["params"]])
        tampered = MultiDict([(k, v) for k, v in case["tampered_params"]])
        result = {
            "signature": validator.compute_signature(case["url"], params),
            "accepts_ours": validator.validate(case["url"], params, case["ours"]),
            "accepts_tampered": validator.validate(case["url"], tampered, case["ours"]),
            "variant_accepts_ours": None,
        }
        if case.get("port_variant_url") and case.get("python_port_ok"):
            result["variant_accepts_ours"] = validator.validate(case["port_variant_url"], params, case["ours"])
        print(json.dumps(result), flush=False)


if __name__ == "__main__":
    main()
