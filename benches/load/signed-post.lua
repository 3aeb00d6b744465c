-- wrk script: POST a signed Twilio fallback request (body and X-Twilio-Signature from the environment).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Twilio-Signature"] = os.getenv("WRK_SIGNATURE")
wrk.body = os.getenv("WRK_BODY")
