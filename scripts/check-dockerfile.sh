#!/usr/bin/env bash
# Checks the container image: the Dockerfile and .dockerignore at the repository root.
#
#   scripts/check-dockerfile.sh
#
# Always — and alone where no container engine works (as on this project's CI machines, where
# `docker` is only a client) — the file is checked statically and strictly, and the commands it
# runs are run for real with the binary built here:
#   - two stages at least, every base image tag pinned (no `latest`): the build stage on
#     rust:X.Y.Z-…-CODENAME with X.Y.Z at least what Cargo.toml's rust-version and every package
#     twiml-fallback-cli builds from Cargo.lock need; the runtime stage on debian:CODENAME-slim,
#     the same Debian release (the binary needs the glibc it was linked against);
#   - the build stage's `cargo build` builds the twiml-fallback-cli package, --release, --locked;
#   - the runtime stage copies only the twiml-fallback binary, from the build stage;
#   - it runs as a non-root USER (a user it creates, or a numeric uid other than 0);
#   - EXPOSE is serve's default port (as `twiml-fallback serve --help` says);
#   - HEALTHCHECK is present and, in exec form, calls an existing subcommand of the binary
#     (`--help` parses), aimed at 127.0.0.1 on that port, within Docker's --timeout; it is run
#     against a `serve` started here (exit 0) and against a closed port (exit 1);
#   - the CMD's --inbox is inside a VOLUME (the outage inbox outlives the container);
#   - ENTRYPOINT + CMD (exec form) run `twiml-fallback serve --addr 0.0.0.0:PORT` (every interface,
#     the exposed port); that command is started here, on a free loopback port, with
#     TWILIO_AUTH_TOKEN from the environment as the image gets it, must refuse an unsigned request
#     with 403, and must stop with exit 0 on the STOPSIGNAL (SIGTERM);
#   - every COPY source exists in the repository, none of its tracked files is left out of the
#     build context by .dockerignore, the context holds no target/, .dev.vars, .env or .git, and
#     the workspace those COPYs assemble loads with `cargo metadata --locked --offline`.
# With `docker info` or `podman info` working, it also builds the image, runs it, waits for its
# HEALTHCHECK to report healthy, checks /healthz from the host, the user inside, and a graceful
# stop.
#
# Exits non-zero naming every problem.
#
#   --static                 skip the image build even where an engine works
#   DOCKERFILE=PATH          check that file instead of ./Dockerfile (with PATH.dockerignore, when it
#                            exists, instead of .dockerignore, as BuildKit does)
#   TWIML_FALLBACK_BIN=PATH  use that binary instead of building target/debug/twiml-fallback
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

static_only=0
case "${1:-}" in
  "") ;;
  --static) static_only=1 ;;
  *) printf 'error: unknown argument %s\nhint: scripts/check-dockerfile.sh [--static]\n' "$1" >&2; exit 2 ;;
esac
DOCKERFILE=${DOCKERFILE:-Dockerfile}
export DOCKERFILE

BIN=${TWIML_FALLBACK_BIN:-}
if [ -z "$BIN" ]; then
  log "cargo build --locked -p twiml-fallback-cli (the binary whose commands the Dockerfile runs)"
  cargo build --locked --quiet -p twiml-fallback-cli --bin twiml-fallback
  BIN="$REPO_ROOT/target/debug/twiml-fallback"
fi
[ -x "$BIN" ] || die "no twiml-fallback binary at $BIN"
command -v python3 >/dev/null 2>&1 || die "python3 is needed to read the Dockerfile"

log "$DOCKERFILE and its .dockerignore: static checks, and their commands run with $BIN"
python3 - "$BIN" <<'PY' || die "$DOCKERFILE: the check failed (every problem is listed above)"
import json, os, re, shlex, shutil, signal, socket, subprocess, sys, tempfile, time

BIN = sys.argv[1]
problems = []


def problem(message):
    problems.append(message)
    print(f"  ✗ {message}", file=sys.stderr)


def ok(message):
    print(f"  ✓ {message}", file=sys.stderr)


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kwargs)


def version(text):
    numbers = [int(part) for part in re.findall(r"\d+", text)[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))


# ---------------------------------------------------------------- the Dockerfile, instruction by instruction
def instructions(path):
    found, current, start = [], "", None
    for number, raw in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not current and not stripped):
            continue
        if start is None:
            start = number
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        match = re.match(r"(\S+)\s*(.*)", current, re.S)
        found.append((start, match.group(1).upper(), match.group(2).strip()))
        current, start = "", None
    if current:
        problem(f"{DOCKERFILE}:{start}: the last instruction ends with a line continuation")
    return found


def exec_form(line, what, text):
    if not text.startswith("["):
        problem(f"{DOCKERFILE}:{line}: {what} must use the exec form (a JSON array): a shell form runs /bin/sh -c, which does not pass SIGTERM on")
        return None
    try:
        args = json.loads(text)
    except json.JSONDecodeError as error:
        problem(f"{DOCKERFILE}:{line}: {what} is not a valid JSON array: {error}")
        return None
    if not all(isinstance(arg, str) for arg in args) or not args:
        problem(f"{DOCKERFILE}:{line}: {what} must be a non-empty array of strings")
        return None
    return args


def flags_and_rest(text):
    """`--from=build src dst` → ({'from': 'build'}, ['src', 'dst'])."""
    words = shlex.split(text)
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


DOCKERFILE = os.environ.get("DOCKERFILE", "Dockerfile")
# BuildKit reads <Dockerfile>.dockerignore before the context's .dockerignore.
DOCKERIGNORE = DOCKERFILE + ".dockerignore" if os.path.isfile(DOCKERFILE + ".dockerignore") else ".dockerignore"
if not os.path.isfile(DOCKERFILE):
    print(f"  ✗ there is no {DOCKERFILE}", file=sys.stderr)
    sys.exit(1)

stages = []
for line, word, text in instructions(DOCKERFILE):
    if word == "FROM":
        flags, words = flags_and_rest(text)
        name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
        stages.append({"line": line, "image": words[0] if words else "", "name": name, "instructions": []})
    elif not stages:
        if word not in ("ARG",):
            problem(f"{DOCKERFILE}:{line}: {word} before the first FROM")
    else:
        stages[-1]["instructions"].append((line, word, text))

if len(stages) < 2:
    problem(f"the Dockerfile has {len(stages)} stage(s): it must be multi-stage (build with Rust, run on slim Debian)")
    sys.exit(1)
build, runtime = stages[0], stages[-1]
ok(f"{len(stages)} stages: {build['image']} → {runtime['image']}")


def image_parts(image):
    name, _, digest = image.partition("@")
    repo, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "")
    return repo, tag, digest


# Pinned base images.
codenames = {"bullseye": 11, "bookworm": 12, "trixie": 13, "forky": 14}
for stage in stages:
    if "$" in stage["image"]:
        problem(f"{DOCKERFILE}:{stage['line']}: the base image {stage['image']} comes from an ARG: name it, pinned, so it can be checked")
        continue
    repo, tag, digest = image_parts(stage["image"])
    if not tag and not digest:
        problem(f"{DOCKERFILE}:{stage['line']}: {stage['image']} has no tag: pin it (e.g. {repo}:<version>)")
    elif tag in ("latest", "slim", "stable", "stable-slim", "testing", "sid", "unstable"):
        problem(f"{DOCKERFILE}:{stage['line']}: {stage['image']}: the tag {tag!r} moves; pin a version")

# The build stage: the Rust image of the version Cargo.toml and Cargo.lock need.
build_repo, build_tag, _ = image_parts(build["image"])
rust_tag = re.fullmatch(r"(\d+\.\d+\.\d+)(?:-slim)?-([a-z]+)", build_tag)
if build_repo not in ("rust", "docker.io/library/rust") or not rust_tag:
    problem(f"{DOCKERFILE}:{build['line']}: the build stage must be the official Rust image pinned to a full version and a Debian release, e.g. rust:1.86.0-slim-bookworm (got {build['image']})")
    rust_version, build_codename = None, None
else:
    rust_version, build_codename = rust_tag.group(1), rust_tag.group(2)

metadata = run(["cargo", "metadata", "--locked", "--format-version", "1"])
if metadata.returncode != 0:
    problem(f"cargo metadata --locked failed: {metadata.stderr.strip()}")
else:
    data = json.loads(metadata.stdout)
    packages = {package["id"]: package for package in data["packages"]}
    nodes = {node["id"]: node for node in data["resolve"]["nodes"]}
    cli = next(id for id, package in packages.items() if package["name"] == "twiml-fallback-cli")
    # What `cargo build -p twiml-fallback-cli` compiles: normal and build dependencies, transitively.
    seen, todo = set(), [cli]
    while todo:
        id = todo.pop()
        if id in seen:
            continue
        seen.add(id)
        for dep in nodes[id]["deps"]:
            if any(kind["kind"] in (None, "build") for kind in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    needs = max(((version(packages[id].get("rust_version") or "0"), packages[id]) for id in seen), key=lambda pair: pair[0])
    declared = packages[cli].get("rust_version") or "0"
    need = max(needs[0], version(declared))
    need_text = ".".join(map(str, need))
    because = f"{needs[1]['name']} {needs[1]['version']}" if needs[0] >= version(declared) else "Cargo.toml's rust-version"
    if version(declared) < needs[0]:
        print(f"  ! note: Cargo.toml's rust-version ({declared}) is older than what Cargo.lock needs for twiml-fallback-cli ({need_text}: {because})", file=sys.stderr)
    if rust_version is not None:
        if version(rust_version) < need:
            problem(f"{DOCKERFILE}:{build['line']}: Rust {rust_version} cannot build the locked dependencies: they need {need_text} ({because})")
        else:
            ok(f"Rust {rust_version} ≥ {need_text}, what the lock needs ({because})")

# The runtime stage: slim Debian, the build stage's release.
runtime_repo, runtime_tag, _ = image_parts(runtime["image"])
debian_tag = re.fullmatch(r"([a-z]+|\d+(?:\.\d+)?)(?:-\d{8})?-slim", runtime_tag)
if runtime_repo not in ("debian", "docker.io/library/debian") or not debian_tag:
    problem(f"{DOCKERFILE}:{runtime['line']}: the runtime stage must be slim Debian pinned to a release, e.g. debian:bookworm-slim (got {runtime['image']})")
elif build_codename:
    release = debian_tag.group(1)
    runtime_number = codenames.get(release, int(release.split(".")[0]) if release[0].isdigit() else None)
    if runtime_number != codenames.get(build_codename):
        problem(f"{DOCKERFILE}:{runtime['line']}: the runtime's Debian ({release}) is not the build stage's ({build_codename}): the binary needs the glibc it was linked against")
    else:
        ok(f"both stages on Debian {build_codename}")

# The build command.
def cargo_builds(stage):
    for line, word, text in stage["instructions"]:
        if word != "RUN":
            continue
        words = shlex.split(text, comments=False)
        for index in range(len(words) - 1):
            if words[index] == "cargo" and words[index + 1] == "build":
                command = []
                for token in words[index + 2:]:
                    if token in ("&&", "||", ";", "|"):
                        break
                    command.append(token)
                yield line, command


builds = [found for stage in stages[:-1] for found in cargo_builds(stage)]
if not builds:
    problem("no build stage RUNs `cargo build`")
for line, command in builds:
    package = None
    for index, token in enumerate(command):
        if token in ("-p", "--package") and index + 1 < len(command):
            package = command[index + 1]
        elif token.startswith("--package="):
            package = token.split("=", 1)[1]
    if package != "twiml-fallback-cli":
        problem(f"{DOCKERFILE}:{line}: `cargo build` must build the twiml-fallback-cli package (-p twiml-fallback-cli), not {package or 'the whole workspace'}")
    if "--locked" not in command:
        problem(f"{DOCKERFILE}:{line}: `cargo build` must pass --locked (build what Cargo.lock says, or fail)")
    if "--release" not in command:
        problem(f"{DOCKERFILE}:{line}: `cargo build` must pass --release")
if builds and not problems:
    ok("the build stage runs cargo build --release --locked -p twiml-fallback-cli")

# The runtime stage's instructions.
def last(stage, word):
    found = [(line, text) for line, instruction, text in stage["instructions"] if instruction == word]
    return found[-1] if found else (None, None)


stage_names = {stage["name"] for stage in stages[:-1] if stage["name"]} | {str(index) for index in range(len(stages) - 1)}
image_bin = None
for line, word, text in runtime["instructions"]:
    if word in ("COPY", "ADD"):
        flags, words = flags_and_rest(text)
        if word == "ADD" or flags.get("from") not in stage_names:
            problem(f"{DOCKERFILE}:{line}: the runtime stage may only COPY --from the build stage (the binary, nothing else): {word} {text}")
            continue
        *sources, destination = words
        for source in sources:
            if os.path.basename(source) != "twiml-fallback":
                problem(f"{DOCKERFILE}:{line}: the runtime stage copies {source}: only the twiml-fallback binary belongs there")
        image_bin = destination + "twiml-fallback" if destination.endswith("/") else destination
        build_runs = " ".join(text for stage in stages[:-1] for _, instruction, text in stage["instructions"] if instruction == "RUN")
        if sources and not any(source in build_runs or source.endswith("/target/release/twiml-fallback") for source in sources):
            problem(f"{DOCKERFILE}:{line}: {sources[0]} is not where the build stage puts the release binary")
if not image_bin:
    problem("the runtime stage does not COPY the twiml-fallback binary from the build stage")
else:
    ok(f"the runtime stage holds the binary alone, at {image_bin}")

user_line, user = last(runtime, "USER")
if user is None:
    problem("the runtime stage has no USER: it would run as root")
else:
    name = user.split(":")[0]
    runs = " ".join(text for _, instruction, text in runtime["instructions"] if instruction == "RUN")
    if name in ("root", "0"):
        problem(f"{DOCKERFILE}:{user_line}: USER {user} is root")
    elif not name.isdigit() and not re.search(rf"\b(useradd|adduser)\b[^&;]*\b{re.escape(name)}\b", runs):
        problem(f"{DOCKERFILE}:{user_line}: USER {name} is not created in the runtime stage (useradd)")
    else:
        ok(f"runs as USER {user}")

help_text = run([BIN, "serve", "--help"]).stdout
default = re.search(r"--addr <[^>]*>.*?\[default: ([^\]]+)\]", help_text, re.S)
serve_port = default.group(1).rsplit(":", 1)[1] if default else None
if not serve_port:
    problem(f"cannot read serve's default address from `{BIN} serve --help`")
expose_line, expose = last(runtime, "EXPOSE")
exposed = None
if expose is None:
    problem("the runtime stage has no EXPOSE")
else:
    ports = expose.split()
    exposed = ports[0].split("/")[0] if len(ports) == 1 else None
    if len(ports) != 1 or (ports[0].count("/") and not ports[0].endswith("/tcp")):
        problem(f"{DOCKERFILE}:{expose_line}: EXPOSE {expose}: expose serve's one TCP port")
    elif exposed != serve_port:
        problem(f"{DOCKERFILE}:{expose_line}: EXPOSE {exposed} is not serve's default port {serve_port}")
    else:
        ok(f"EXPOSE {exposed}, serve's default port")

# ENTRYPOINT + CMD: serve on every interface, on the exposed port.
entry_line, entry = last(runtime, "ENTRYPOINT")
cmd_line, cmd = last(runtime, "CMD")
entry_args = exec_form(entry_line, "ENTRYPOINT", entry) if entry is not None else []
cmd_args = exec_form(cmd_line, "CMD", cmd) if cmd is not None else []
serve_args = None
if entry_args is not None and cmd_args is not None:
    full = entry_args + cmd_args
    if not full or full[0] not in (image_bin, "twiml-fallback"):
        problem(f"ENTRYPOINT/CMD must run {image_bin} (got {full[:1]})")
    elif full[1:2] != ["serve"]:
        problem(f"ENTRYPOINT/CMD must run `{full[0]} serve` (got {' '.join(full)})")
    else:
        serve_args = full[1:]
        addr = next((serve_args[i + 1] for i, arg in enumerate(serve_args[:-1]) if arg == "--addr"), None)
        addr = addr or next((arg.split("=", 1)[1] for arg in serve_args if arg.startswith("--addr=")), None)
        if addr is None:
            problem("the CMD's serve has no --addr: serve's default 127.0.0.1 is unreachable from outside the container")
        else:
            host, _, port = addr.rpartition(":")
            if host not in ("0.0.0.0", "[::]"):
                problem(f"the CMD's serve listens on {addr}: inside a container it must listen on every interface (0.0.0.0:{exposed})")
            if port != exposed:
                problem(f"the CMD's serve listens on port {port}, not the exposed {exposed}")
            if host in ("0.0.0.0", "[::]") and port == exposed:
                ok(f"ENTRYPOINT + CMD: {' '.join(full)}")
# The inbox: its file must be inside a VOLUME (else it is lost with the container).
if serve_args is not None:
    inbox = next((serve_args[i + 1] for i, arg in enumerate(serve_args[:-1]) if arg == "--inbox"), None)
    inbox = inbox or next((arg.split("=", 1)[1] for arg in serve_args if arg.startswith("--inbox=")), None)
    volumes = []
    for _, text in [(line, text) for line, word, text in runtime["instructions"] if word == "VOLUME"]:
        volumes += json.loads(text) if text.startswith("[") else text.split()
    if "--no-inbox" in serve_args:
        ok("the image keeps no inbox (--no-inbox)")
    elif inbox is None:
        problem("the CMD's serve has no --inbox: its default under $HOME is not writable in the image, and not in a volume")
    elif not any(inbox == volume or inbox.startswith(volume.rstrip("/") + "/") for volume in volumes):
        problem(f"the inbox {inbox} is not inside a VOLUME ({volumes}): it would be lost with the container")
    else:
        ok(f"the inbox {inbox} is inside VOLUME {volumes}")
stop_line, stop = last(runtime, "STOPSIGNAL")
if stop is not None and stop.upper() not in ("SIGTERM", "TERM", "15"):
    problem(f"{DOCKERFILE}:{stop_line}: STOPSIGNAL {stop}: serve stops gracefully on SIGTERM")

# HEALTHCHECK: an existing subcommand of the binary, aimed at the exposed port.
health_line, health = last(runtime, "HEALTHCHECK")
health_args, docker_timeout = None, 30.0
if health is None:
    problem("the runtime stage has no HEALTHCHECK")
elif health.upper() == "NONE":
    problem(f"{DOCKERFILE}:{health_line}: HEALTHCHECK NONE")
else:
    match = re.match(r"((?:--\S+\s+)*)CMD\s+(.*)", health, re.S | re.I)
    if not match:
        problem(f"{DOCKERFILE}:{health_line}: HEALTHCHECK [OPTIONS] CMD [...] expected")
    else:
        for option in match.group(1).split():
            name, _, value = option[2:].partition("=")
            if name == "timeout":
                units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
                docker_timeout = sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value))
        args = exec_form(health_line, "HEALTHCHECK CMD", match.group(2))
        if args is not None:
            if args[0] not in (image_bin, "twiml-fallback"):
                problem(f"{DOCKERFILE}:{health_line}: HEALTHCHECK runs {args[0]}, not the binary {image_bin} (a slim image has no curl)")
            else:
                parsed = run([BIN, *args[1:], "--help"])
                if parsed.returncode != 0:
                    problem(f"{DOCKERFILE}:{health_line}: `twiml-fallback {' '.join(args[1:])}` is not a command the binary has: {parsed.stderr.strip()}")
                else:
                    health_args = args[1:]
                    url = next((health_args[i + 1] for i, arg in enumerate(health_args[:-1]) if arg == "--url"), None)
                    url_default = re.search(r"--url <[^>]*>.*?\[default: ([^\]]+)\]", parsed.stdout, re.S)
                    url = url or (url_default.group(1) if url_default else None)
                    timeout_ms = next((health_args[i + 1] for i, arg in enumerate(health_args[:-1]) if arg == "--timeout-ms"), None)
                    timeout_default = re.search(r"--timeout-ms <[^>]*>.*?\[default: (\d+)\]", parsed.stdout, re.S)
                    timeout_ms = int(timeout_ms or (timeout_default.group(1) if timeout_default else 0))
                    target = re.fullmatch(r"http://(127\.0\.0\.1|localhost|\[::1\]):(\d+)(/.*)", url or "")
                    if not target:
                        problem(f"{DOCKERFILE}:{health_line}: the health check asks {url}: it must ask serve inside the container, http://127.0.0.1:{exposed}/healthz")
                    elif target.group(2) != exposed:
                        problem(f"{DOCKERFILE}:{health_line}: the health check asks port {target.group(2)}, not the exposed {exposed}")
                    elif timeout_ms / 1000 > docker_timeout:
                        problem(f"{DOCKERFILE}:{health_line}: HEALTHCHECK --timeout ({docker_timeout:g} s) is shorter than the command's own ({timeout_ms} ms): Docker would kill it first")
                    else:
                        ok(f"HEALTHCHECK: twiml-fallback {' '.join(health_args)} (asks {url})")


# ---------------------------------------------------------------- the commands, run for real
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_url(args, url):
    args = list(args)
    if "--url" in args:
        args[args.index("--url") + 1] = url
    else:
        args += ["--url", url]
    return args


if serve_args is not None:
    args = list(serve_args)
    for index, arg in enumerate(args):
        if arg == "--addr":
            args[index + 1] = "127.0.0.1:0"
        elif arg.startswith("--addr="):
            args[index] = "--addr=127.0.0.1:0"
    # The image's inbox path is inside its volume; here, a temporary folder stands in for it.
    inbox_dir = tempfile.TemporaryDirectory(prefix="check-dockerfile-inbox-")
    for index, arg in enumerate(args):
        if arg == "--inbox":
            args[index + 1] = os.path.join(inbox_dir.name, "inbox.sqlite3")
        elif arg.startswith("--inbox="):
            args[index] = "--inbox=" + os.path.join(inbox_dir.name, "inbox.sqlite3")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TWILIO_", "FALLBACK_"))}
    env["TWILIO_AUTH_TOKEN"] = "check-dockerfile-token"
    log_file = tempfile.NamedTemporaryFile("w+", prefix="check-dockerfile-serve-", suffix=".log")
    process = subprocess.Popen([BIN, *args], stdout=subprocess.DEVNULL, stderr=log_file, env=env)
    try:
        base = None
        for _ in range(200):
            log_file.seek(0)
            found = re.search(r"listening on (http://\S+)", log_file.read())
            if found:
                base = found.group(1)
                break
            if process.poll() is not None:
                break
            time.sleep(0.05)
        if base is None:
            log_file.seek(0)
            problem(f"the image's command `twiml-fallback {' '.join(args)}` did not start: {log_file.read().strip()}")
        else:
            ok(f"the image's command starts (here on {base})")
            host, port = base[len("http://"):].split("/")[0].rsplit(":", 1)
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(b"POST /voice HTTP/1.1\r\nHost: check\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\nConnection: close\r\n\r\nCallSid=CA")
                status = sock.recv(64).split(b" ")[1:2]
            if status != [b"403"]:
                problem(f"with TWILIO_AUTH_TOKEN in its environment, the image's serve answered an unsigned request {status}, not 403")
            else:
                ok("it reads TWILIO_AUTH_TOKEN from the environment (an unsigned request gets 403)")
            if health_args is not None:
                healthy = run([BIN, *with_url(health_args, f"{base}/healthz")])
                if healthy.returncode != 0:
                    problem(f"the HEALTHCHECK command failed against a running serve (exit {healthy.returncode}): {healthy.stderr.strip()}")
                else:
                    ok(f"the HEALTHCHECK command passes against it: {healthy.stdout.strip()}")
                closed = run([BIN, *with_url(health_args, f"http://127.0.0.1:{free_port()}/healthz")])
                if closed.returncode != 1:
                    problem(f"the HEALTHCHECK command exits {closed.returncode} when nothing answers: Docker needs 1 (unhealthy)")
                else:
                    ok("and fails (exit 1) when nothing answers")
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            code = None
        if base is not None and code != 0:
            problem(f"the image's serve did not stop with exit 0 on SIGTERM (docker stop): {code}")
        elif base is not None:
            ok("it stops with exit 0 on SIGTERM")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# ---------------------------------------------------------------- COPY sources and the build context
def pattern_regex(pattern):
    out, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                out, index = out + "(?:.*/)?", index + 1
            else:
                out += ".*"
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
        index += 1
    return re.compile(f"^{out}$")


patterns = []
if not os.path.isfile(DOCKERIGNORE):
    problem("there is no .dockerignore: the whole directory (target/, .dev.vars, .git) would be the build context")
else:
    for raw in open(DOCKERIGNORE, encoding="utf-8"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line[1:] if negated else line).lstrip("/")
        patterns.append((negated, pattern_regex(pattern), pattern))


def excluded(path):
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[:length]) for length in range(1, len(parts) + 1)]
    verdict = False
    for negated, regex, _ in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            verdict = not negated
    return verdict


def could_include_under(directory):
    """Whether an exception pattern may match something inside `directory`: its literal prefix
    (up to the first wildcard) and the directory agree."""
    inside = directory + "/"
    for negated, _, pattern in patterns:
        if not negated:
            continue
        literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        if inside.startswith(literal) or literal.startswith(inside):
            return True
    return False


context = set()
for directory, subdirectories, files in os.walk("."):
    relative = os.path.relpath(directory, ".")
    relative = "" if relative == "." else relative
    if relative == ".git" or relative.startswith(".git/"):
        subdirectories[:] = []
        continue
    for name in files:
        path = os.path.join(relative, name) if relative else name
        if not excluded(path):
            context.add(path)
    # Skip directories that are excluded and that no exception could bring back.
    subdirectories[:] = [
        name for name in subdirectories
        if not excluded(os.path.join(relative, name) if relative else name)
        or could_include_under(os.path.join(relative, name) if relative else name)
    ]
for path in sorted(context):
    parts = path.split("/")
    if "target" in parts[:-1] or parts[-1] in (".dev.vars", ".env") or parts[0] == ".git":
        problem(f"the build context holds {path}: .dockerignore must leave build output and local secrets out")
        break

tracked = run(["git", "ls-files"]).stdout.split("\n")
build_context = tempfile.mkdtemp(prefix="check-dockerfile-context-")
try:
    workdir = "/"
    copies_ok = True
    for stage in stages:
        for line, word, text in stage["instructions"]:
            if word == "WORKDIR":
                workdir = os.path.join(workdir, text)
            if word not in ("COPY", "ADD"):
                continue
            flags, words = flags_and_rest(text)
            if "from" in flags:
                continue
            *sources, destination = words
            for source in sources:
                clean = os.path.normpath(source).lstrip("/")
                if not os.path.exists(clean):
                    problem(f"{DOCKERFILE}:{line}: COPY {source}: no such file or directory in the repository")
                    copies_ok = False
                    continue
                left_out = [path for path in tracked if (path == clean or path.startswith(clean + "/")) and path not in context]
                if left_out:
                    problem(f"{DOCKERFILE}:{line}: COPY {source}: .dockerignore leaves {len(left_out)} tracked file(s) out of the build context, e.g. {left_out[0]}")
                    copies_ok = False
                if stage is not build:
                    continue
                # Assemble the build stage's files as the image would have them.
                target = os.path.normpath(os.path.join(build_context, os.path.join(workdir, destination).lstrip("/")))
                inside = [path for path in context if path == clean or path.startswith(clean + "/")]
                for path in inside:
                    if os.path.isdir(clean):
                        relative = os.path.relpath(path, clean)
                        to = os.path.join(target, relative)
                    else:
                        to = os.path.join(target, os.path.basename(path)) if destination.endswith("/") or len(sources) > 1 else target
                    os.makedirs(os.path.dirname(to), exist_ok=True)
                    shutil.copy2(path, to)
    if copies_ok:
        ok("every COPY source exists and is in the build context; the context holds no target/ or secrets")
    build_workdir = next((text for _, word, text in build["instructions"] if word == "WORKDIR"), "/")
    root = os.path.normpath(os.path.join(build_context, build_workdir.lstrip("/")))
    loaded = run(["cargo", "metadata", "--locked", "--offline", "--format-version", "1"], cwd=root,
                 env={**os.environ, "CARGO_TARGET_DIR": os.path.join(build_context, "target")})
    if loaded.returncode != 0:
        why = " ".join(line.strip() for line in loaded.stderr.strip().splitlines() if line.strip()) or f"exit {loaded.returncode}"
        problem(f"the build stage's files do not make a workspace cargo can load with --locked: {why}")
    else:
        ok("the files the build stage copies load as the workspace, with --locked")
finally:
    shutil.rmtree(build_context, ignore_errors=True)

if problems:
    print(f"{len(problems)} problem(s) with the Dockerfile", file=sys.stderr)
    sys.exit(1)
PY

if [ "$static_only" = 1 ]; then
  log "--static: the image itself was not built"
  exit 0
fi
engine=""
for candidate in docker podman; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" info >/dev/null 2>&1; then
    engine=$candidate
    break
  fi
done
if [ -z "$engine" ]; then
  log "no container engine answers here (docker info / podman info): the Dockerfile was checked statically and its commands run with the host's binary; the image itself was not built"
  exit 0
fi

tag="twiml-fallback:check-$$"
container=""
cleanup() {
  [ -n "$container" ] && "$engine" rm -f "$container" >/dev/null 2>&1
  "$engine" rmi -f "$tag" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# podman keeps HEALTHCHECK only in the docker image format (OCI images have no such field).
format=()
[ "$engine" = podman ] && format=(--format docker)
log "$engine build ${format[*]} -t $tag -f $DOCKERFILE ."
"$engine" build "${format[@]}" -t "$tag" -f "$DOCKERFILE" . || die "$engine build failed"
port=$(sed -n 's/^EXPOSE[[:space:]]*\([0-9]*\).*/\1/p' "$DOCKERFILE" | tail -n 1)
container=$("$engine" run -d -e TWILIO_AUTH_TOKEN=check-dockerfile-token -p "127.0.0.1::$port" "$tag") \
  || die "$engine run failed"
log "waiting for the image's HEALTHCHECK to report healthy"
healthy=0
# Docker's first probe comes after --start-period's probes or one --interval (30 s) at the latest.
for _ in $(seq 1 90); do
  if [ "$engine" = podman ]; then
    podman healthcheck run "$container" >/dev/null 2>&1 && healthy=1
  else
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$container" 2>/dev/null)" = healthy ] && healthy=1
  fi
  [ "$healthy" = 1 ] && break
  sleep 1
done
[ "$healthy" = 1 ] || { "$engine" logs "$container" >&2; die "the container never became healthy"; }
mapped=$("$engine" port "$container" "$port/tcp" | head -n 1 | sed 's/.*://')
"$BIN" healthcheck --url "http://127.0.0.1:$mapped/healthz" || die "GET /healthz from the host failed"
uid=$("$engine" exec "$container" id -u) || die "cannot run id in the container"
[ "$uid" != 0 ] || die "the container runs as root"
log "the container runs as uid $uid; stopping it (SIGTERM)"
"$engine" stop -t 20 "$container" >/dev/null
code=$("$engine" inspect -f '{{.State.ExitCode}}' "$container")
[ "$code" = 0 ] || { "$engine" logs "$container" >&2; die "serve exited $code on docker stop, not 0"; }
log "the image builds, runs as uid $uid, reports healthy, answers /healthz and stops cleanly"
