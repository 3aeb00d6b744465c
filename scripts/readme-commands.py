#!/usr/bin/env python3
"""Runs the README's commands as a newcomer would, offline, and checks what they print.

    scripts/readme-commands.py            # after `cargo build -p twiml-fallback-cli --example chaos`

Every command line of README.md's ```sh blocks and every `$ command` of its ```text transcripts is
either run or skipped by a rule below that says why (a Cloudflare or Twilio account, a synopsis, the
test command itself). Rules, in order, the first match wins:

- `cargo run [--release] -p twiml-fallback-cli -- ARGS` runs the debug build of the same binary
  (`target/debug/twiml-fallback ARGS`); `cargo run [--release] -p twiml-fallback --example NAME --
  ARGS` runs `target/debug/examples/NAME ARGS`. Bare `twiml-fallback` is that binary too, but only
  after the README has said how to install it (the `cargo install` line): before that, it is an
  error, because a newcomer would not have it on PATH.
- `...` in `NAME=...` stands for a secret: a test token is put in its place.
- A server command (`serve`, the chaos example) runs in the background until the port it listens
  on answers (one that ends first, as a broken configuration does, is a command like any other);
  a later server on the same port replaces it.
- A transcript marked as a log sample (the HTML comment `SAMPLE` below, just before its fence)
  shows lines that requests from Twilio produce; its command is not run.
- A transcript's output is compared with what the command prints, line by line, after replacing
  times, durations and incident ids by placeholders and leaving out the `date` and `content-length` headers; a server's transcript lines are its log,
  checked for the same shape once it has answered the commands that follow it.

Exits 1 with every difference listed; prints `N passed, N failed` last.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = ROOT / "target" / "debug"
TOKEN = "readme-test-token"

# (pattern, reason): commands that are not run, and why.
SKIPS = [
    (r"^scripts/test\.sh\b", "the test command itself (this check runs inside it)"),
    (r"^scripts/worker\.sh (wrangler|deploy\b(?!.*--dry-run))", "needs a Cloudflare account"),
    (r"^scripts/worker\.sh dev\b", "the Worker's dev server: tests/tests/worker.rs runs it under workerd"),
    (r"\bnumbers (audit|set)\b(?!.*--api-base http://127\.0\.0\.1[:/])", "needs a Twilio account: the ones with --api-base http://127.0.0.1:3000 run against the chaos demo's stand-in account"),
    (r"\[--", "a synopsis, not a command"),
    (r"^(ngrok|cloudflared|docker|podman|systemctl|sudo|wrangler) ", "needs a service outside this machine"),
    (r"^cargo install\b", "installs into ~/.cargo: the check uses target/debug instead"),
    (r"^cargo build --release\b", "a release build of the binary the check runs as a debug build"),
    (r"https?://(?!127\.0\.0\.1[:/]|localhost[:/])[\w.-]+\.[a-z]{2,}", "needs your own public URLs (a tunnel, a Worker, your app)"),
]

SERVERS = [r"twiml-fallback serve\b", r"/examples/chaos\b"]


# Put before a fence, this marks a transcript that is a log sample: the requests that produce it
# come from Twilio (signed, through a tunnel, to an alert webhook), so its command is not run.
SAMPLE = "<!-- readme-commands: log sample -->"


@dataclass
class Command:
    line: int
    text: str
    expected: list[str] = field(default_factory=list)
    transcript: bool = False
    sample: bool = False


def commands(readme: str) -> list[Command]:
    found: list[Command] = []
    lines = readme.split("\n")
    index = 0
    while index < len(lines):
        fence = re.match(r"^(\s*)```(\w*)\s*$", lines[index])
        if not fence:
            index += 1
            continue
        indent, lang = len(fence.group(1)), fence.group(2)
        sample = index > 0 and lines[index - 1].strip() == SAMPLE
        index += 1
        body_start = index
        while index < len(lines) and not lines[index].lstrip().startswith("```"):
            index += 1
        # A fence inside a list item is indented: so is its body.
        body = [line[indent:] if line[:indent].isspace() else line for line in lines[body_start:index]]
        index += 1
        if lang in ("sh", "bash", "shell"):
            pending = ""
            for offset, raw in enumerate(body):
                text = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
                if not text and not pending:
                    continue
                if text.endswith("\\"):
                    pending += text[:-1] + " "
                    continue
                found.append(Command(body_start + offset + 1, (pending + text).strip()))
                pending = ""
        elif lang == "text":
            current: Command | None = None
            pending = ""
            for offset, raw in enumerate(body):
                if raw.startswith("$ ") or (pending and current is None):
                    text = raw[2:] if raw.startswith("$ ") else raw
                    if text.rstrip().endswith("\\"):
                        pending += text.rstrip()[:-1] + " "
                        continue
                    current = Command(
                        body_start + offset + 1, (pending + text).strip(), transcript=True, sample=sample
                    )
                    pending = ""
                    found.append(current)
                elif current is not None:
                    current.expected.append(raw)
    return found


def normalise(text: str) -> str:
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<TIME>", text)
    text = re.sub(r"\b\d+ ms\b", "<N> ms", text)
    text = re.sub(r"\bin \d+(\.\d+)? ?(µs|ms|s)\b", "in <T>", text)
    # An incident's id (a hash of its origin and when it opened) and how long it has lasted.
    text = re.sub(r"\btwf-[0-9a-f]{16}\b", "twf-<ID>", text)
    # A probe's id (random) from numbers audit --probe.
    text = re.sub(r"\bprobe-[0-9a-f]{16}\b", "probe-<ID>", text)
    text = re.sub(r"\b(for|after) +(\d+h )?(\d+m )?\d+[sm]\b", r"\1 <D>", text)
    text = re.sub(r"\bduration_seconds=\d+", "duration_seconds=<N>", text)
    return text.rstrip()


def port_of(command: str) -> int:
    match = re.search(r"--addr\s+\S*?:(\d+)", command)
    return int(match.group(1)) if match else 8787


def port_in_use(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 120.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class Runner:
    def __init__(self) -> None:
        self.installed = False
        self.servers: dict[int, tuple[subprocess.Popen, Command]] = {}
        self.passed = 0
        self.failures: list[str] = []
        self.env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", NO_COLOR="1")

    def fail(self, command: Command, why: str) -> None:
        self.failures.append(f"README.md:{command.line}: `{command.text}`: {why}")

    def rewrite(self, command: Command) -> str | None:
        text = re.sub(r"\b(\w+)=\.\.\.", rf"\1={TOKEN}", command.text)
        text = re.sub(
            r"cargo run (--release )?-p twiml-fallback-cli --( |$)", f"{BIN}/twiml-fallback ", text
        )
        text = re.sub(
            r"cargo run (--release )?-p twiml-fallback --example (\S+) --( |$)", rf"{BIN}/examples/\2 ", text
        )
        if re.search(r"(^|[\s=])twiml-fallback\b", text.replace(f"{BIN}/twiml-fallback", "")) and not self.installed:
            self.fail(command, "uses `twiml-fallback` before the README says how to install it")
            return None
        return text.strip()

    def run(self, command: Command) -> None:
        if re.match(r"^cargo install\b.*--path crates/twiml-fallback-cli\b", command.text):
            self.installed = True
        if command.sample:
            print(f"skip  README.md:{command.line}: {command.text}  (a log sample, marked {SAMPLE})")
            return
        # Matched without the variables set in front of it (`NAME=value command …`).
        bare = re.sub(r"^(\w+=\S*\s+)+", "", command.text)
        # A transcript that ends in a usage error never reaches an account or a network: run it.
        refused_early = command.transcript and bool(command.expected) and command.expected[0].startswith("error:")
        for pattern, reason in SKIPS:
            if re.search(pattern, bare) and not refused_early:
                print(f"skip  README.md:{command.line}: {command.text}  ({reason})")
                return
        text = self.rewrite(command)
        if text is None:
            return
        if any(re.search(pattern, text) for pattern in SERVERS):
            self.start_server(command, text)
            return
        print(f"run   README.md:{command.line}: {command.text}")
        process = subprocess.Popen(
            text, shell=True, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            self.fail(command, "did not finish within 120 s")
            return
        done = subprocess.CompletedProcess(text, process.returncode, stdout, stderr)
        output = (done.stdout + done.stderr).rstrip("\n").split("\n") if (done.stdout + done.stderr) else []
        if command.transcript:
            self.compare(command, output)
        elif done.returncode != 0:
            self.fail(command, f"exit {done.returncode}:\n" + "\n".join(output[-20:]))
        else:
            self.passed += 1

    def compare(self, command: Command, output: list[str]) -> None:
        expected = [
            normalise(line) for line in command.expected if not re.match(r"(?i)^(date|content-length): ", line)
        ]
        while expected and not expected[-1]:
            expected.pop()
        # Headers that change on every request are left out of the README's transcripts.
        got = [normalise(line) for line in output if not re.match(r"(?i)^(date|content-length): ", line)]
        if got != expected:
            diff = "\n".join(
                f"  README: {e!r}\n  actual: {g!r}"
                for e, g in zip(expected + [""] * len(got), got + [""] * len(expected))
                if e != g
            )
            self.fail(command, "prints something else:\n" + diff)
        else:
            self.passed += 1

    def start_server(self, command: Command, text: str) -> None:
        port = port_of(text)
        self.stop(port)
        if port_in_use(port):
            self.fail(command, f"port {port} is taken by a process this check did not start: stop it first")
            return
        print(f"start README.md:{command.line}: {command.text}  (background, port {port})")
        log = open(ROOT / "target" / f"readme-server-{port}.log", "w+")
        process = subprocess.Popen(
            text, shell=True, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_for_port(port, process):
            log.seek(0)
            output = log.read().rstrip("\n").split("\n")
            if process.poll() is not None and command.transcript:
                # It ended without listening, as the README shows it doing (a configuration error).
                print(f"      (it ended, exit {process.returncode}: its output is the transcript)")
                self.compare(command, output)
            else:
                self.fail(command, f"never listened on port {port}:\n" + "\n".join(output[-30:]))
            return
        self.servers[port] = (process, command)
        self.passed += 1

    def stop(self, port: int) -> None:
        if port not in self.servers:
            return
        process, command = self.servers.pop(port)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        # Graceful shutdown may outlive the shell that started it: wait until the port is free.
        deadline = time.monotonic() + 15
        while port_in_use(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        if command.transcript and command.expected:
            self.check_log(port, command)

    def check_log(self, port: int, command: Command) -> None:
        """Every line of a server's transcript has a line of the same shape in its log."""
        log = (ROOT / "target" / f"readme-server-{port}.log").read_text()
        shapes = [shape(line) for line in log.split("\n")]
        for line in command.expected:
            if line.strip() and shape(line) not in shapes:
                self.fail(command, f"its log never printed a line like:\n  {line}\nlog:\n{log[-2000:]}")

    def finish(self) -> int:
        for port in list(self.servers):
            self.stop(port)
        for failure in self.failures:
            print(f"\nFAILED {failure}", file=sys.stderr)
        print(f"\n{self.passed} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0


def shape(line: str) -> str:
    """A log line without what changes from run to run: times, durations, addresses, SIDs."""
    line = normalise(line)
    line = re.sub(r"^\S*<TIME>\S*\s+", "", line)
    line = re.sub(r"\b(CA|SM|AC)[0-9a-f]{32}\b", r"\1<SID>", line)
    return re.sub(r"\s+", " ", line).strip()


def main() -> int:
    if not (BIN / "twiml-fallback").exists() or not (BIN / "examples" / "chaos").exists():
        print("error: build first: cargo build -p twiml-fallback-cli && cargo build -p twiml-fallback --example chaos",
              file=sys.stderr)
        return 1
    runner = Runner()
    try:
        for command in commands(README.read_text()):
            runner.run(command)
    finally:
        code = runner.finish()
    return code


if __name__ == "__main__":
    sys.exit(main())
