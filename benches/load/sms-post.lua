-- wrk script: POST the form Twilio sends for an inbound SMS (the bench fixture, minus ErrorCode/ErrorUrl).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = os.getenv("WRK_BODY")
