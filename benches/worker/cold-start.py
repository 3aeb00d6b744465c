"""One cold start of a Worker under raw workerd, for benches/worker-cold-start.sh.

    python3 benches/worker/cold-start.py PORT BODY SIGNATURE LOG -- COMMAND...
Starts COMMAND (a `workerd serve` of one Worker listening on 127.0.0.1:PORT; its output to LOG),
waits until the socket accepts a TCP connection (no HTTP request is sent), then POSTs the signed
request to /twilio/sms twice, each on a new connection, checking each answer is the TwiML
<Message> with a 200; then stops COMMAND. Prints three figures in milliseconds: the startup
(process start to the first accepted connection), the first request to the fresh isolate and the
second (warm) one — each from before connecting to the last byte of the answer.
"""
import http.client, socket, subprocess, sys, time

port, body, signature, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
assert sys.argv[5] == "--"
command = sys.argv[6:]
headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}


def request():
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/twilio/sms", body, headers)
    response = connection.getresponse()
    answer = response.read().decode()
    elapsed = time.perf_counter() - started
    connection.close()
    if response.status != 200 or ("<Message>We're sorry." not in answer and "<Message>We&apos;re sorry." not in answer):
        sys.exit(f"unexpected answer: HTTP {response.status} {answer}")
    return elapsed


with open(log, "ab") as output:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
try:
    while True:
        if process.poll() is not None:
            sys.exit(f"workerd exited with status {process.returncode} before listening (log: {log})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except ConnectionRefusedError:
            if time.perf_counter() - started > 60:
                sys.exit(f"workerd did not listen on {port} within 60 s (log: {log})")
            time.sleep(0.0001)
    startup = time.perf_counter() - started
    first = request()
    warm = request()
    print(f"{startup * 1000:.3f} {first * 1000:.3f} {warm * 1000:.3f}")
finally:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
