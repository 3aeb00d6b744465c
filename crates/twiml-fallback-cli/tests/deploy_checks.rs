//! The deployment examples' checks (`scripts/check-deploy.sh`, which runs
//! `scripts/check-dockerfile.sh`): the repository's Dockerfile, .dockerignore and systemd unit pass
//! them, and each kind of mistake in a copy of them is caught, named, and fails the check.
//! `--static`: the image itself is never built here, even where a container engine works.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_twiml-fallback");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// Runs `scripts/check-deploy.sh --static` with `env` (DOCKERFILE=…, UNIT=…).
fn check(env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(repo_root().join("scripts/check-deploy.sh"));
    command
        .arg("--static")
        .env("TWIML_FALLBACK_BIN", BIN)
        .env("NO_COLOR", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run scripts/check-deploy.sh")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("twiml-fallback-deploy-checks-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A mutation: its name, its `(from, to)` replacements, the message it must cause.
type Mutation<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

/// `file` with each `(from, to)` replaced (each `from` must be there).
fn mutated(file: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(repo_root().join(file)).expect("read the original");
    for (from, to) in replacements {
        assert!(text.contains(from), "{file} has no {from:?}");
        text = text.replace(from, to);
    }
    text
}

#[test]
fn the_repositorys_dockerfile_and_systemd_unit_pass_their_checks() {
    let output = check(&[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    for expected in [
        "✓ the build stage runs cargo build --release --locked -p twiml-fallback-cli",
        "✓ runs as USER 10001:10001",
        "✓ EXPOSE 8787, serve's default port",
        "✓ the HEALTHCHECK command passes against it",
        "✓ and fails (exit 1) when nothing answers",
        "✓ the files the build stage copies load as the workspace, with --locked",
        "✓ the token comes from EnvironmentFile=/etc/twiml-fallback/env",
        "✓ the inbox /data/inbox.sqlite3 is inside VOLUME ['/data']",
        "✓ the inbox /var/lib/twiml-fallback/inbox.sqlite3 is in StateDirectory=twiml-fallback",
        "✓ it starts and answers its health check",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    assert!(!text.contains('✗'), "{text}");
}

#[test]
fn each_kind_of_dockerfile_mistake_is_caught_and_named() {
    let scratch = Scratch::new("dockerfile");
    let cases: &[Mutation<'_>] = &[
        (
            "latest",
            &[("FROM rust:1.89.0-slim-bookworm AS build", "FROM rust:latest AS build")],
            "the tag 'latest' moves; pin a version",
        ),
        (
            "old-rust",
            &[("rust:1.89.0-slim-bookworm", "rust:1.80.0-slim-bookworm")],
            "Rust 1.80.0 cannot build the locked dependencies",
        ),
        (
            "other-debian",
            &[("debian:bookworm-slim", "debian:trixie-slim")],
            "the runtime's Debian (trixie) is not the build stage's (bookworm)",
        ),
        ("unlocked", &[(" --locked", "")], "`cargo build` must pass --locked"),
        ("root", &[("USER 10001:10001", "USER root")], "USER root is root"),
        (
            "expose",
            &[("EXPOSE 8787", "EXPOSE 8080")],
            "EXPOSE 8080 is not serve's default port 8787",
        ),
        (
            "curl",
            &[(
                r#"CMD ["/usr/local/bin/twiml-fallback", "healthcheck"]"#,
                r#"CMD ["curl", "-f", "http://127.0.0.1:8787/healthz"]"#,
            )],
            "HEALTHCHECK runs curl, not the binary",
        ),
        (
            "no-such-subcommand",
            &[(r#""healthcheck"]"#, r#""health"]"#)],
            "`twiml-fallback health` is not a command the binary has",
        ),
        (
            "loopback",
            &[(r#""--addr", "0.0.0.0:8787""#, r#""--addr", "127.0.0.1:8787""#)],
            "inside a container it must listen on every interface",
        ),
        (
            "missing-source",
            &[(
                "COPY tests ./tests\n",
                "COPY tests ./tests\nCOPY no-such-dir ./no-such-dir\n",
            )],
            "COPY no-such-dir: no such file or directory in the repository",
        ),
        (
            "ignored-source",
            &[("COPY tests ./tests\n", "COPY tests ./tests\nCOPY benches ./benches\n")],
            "COPY benches: .dockerignore leaves",
        ),
        (
            "inbox-outside-the-volume",
            &[(
                r#""--inbox", "/data/inbox.sqlite3""#,
                r#""--inbox", "/tmp/inbox.sqlite3""#,
            )],
            "the inbox /tmp/inbox.sqlite3 is not inside a VOLUME",
        ),
        (
            "no-inbox-path",
            &[(r#", "--inbox", "/data/inbox.sqlite3""#, "")],
            "the CMD's serve has no --inbox",
        ),
        (
            "missing-member",
            &[("COPY tests ./tests\n", "")],
            "the build stage's files do not make a workspace cargo can load with --locked",
        ),
    ];
    std::thread::scope(|scope| {
        for (name, replacements, expected) in cases {
            let path = scratch.0.join(format!("{name}.Dockerfile"));
            std::fs::write(&path, mutated("Dockerfile", replacements)).expect("write the copy");
            scope.spawn(move || {
                let output = check(&[("DOCKERFILE", &path)]);
                let text = stderr(&output);
                assert_eq!(output.status.code(), Some(1), "{name}: {text}");
                assert!(text.contains(expected), "{name}: {expected:?} missing:\n{text}");
            });
        }
    });
}

#[test]
fn a_dockerignore_that_lets_secrets_or_build_output_in_is_caught() {
    let scratch = Scratch::new("dockerignore");
    let dockerfile = scratch.0.join("Dockerfile");
    std::fs::write(&dockerfile, mutated("Dockerfile", &[])).expect("write the copy");
    // BuildKit reads <Dockerfile>.dockerignore first: a file that ignores nothing but .git.
    std::fs::write(scratch.0.join("Dockerfile.dockerignore"), ".git\n").expect("write the ignore file");
    let output = check(&[("DOCKERFILE", &dockerfile)]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(".dockerignore must leave build output and local secrets out"),
        "{text}"
    );
}

#[test]
fn each_kind_of_systemd_unit_mistake_is_caught_and_named() {
    let scratch = Scratch::new("unit");
    let unit = "deploy/twiml-fallback.service";
    let cases: &[Mutation<'_>] = &[
        (
            "no-dynamic-user",
            &[("DynamicUser=yes\n", "")],
            "DynamicUser=yes is missing",
        ),
        (
            "optional-env-file",
            &[("EnvironmentFile=/etc", "EnvironmentFile=-/etc")],
            "EnvironmentFile=/etc/twiml-fallback/env is missing (or optional",
        ),
        ("no-restart", &[("Restart=on-failure\n", "")], "no Restart= policy"),
        (
            "token-in-unit",
            &[(
                "Restart=on-failure\n",
                "Restart=on-failure\nEnvironment=TWILIO_AUTH_TOKEN=abc\n",
            )],
            "the token must not be in the unit",
        ),
        (
            "weaker",
            &[("ProtectSystem=strict\n", "ProtectSystem=full\n")],
            "hardening: ProtectSystem=strict is missing",
        ),
        (
            "inbox-not-in-state-directory",
            &[("StateDirectory=twiml-fallback\n", "")],
            "is not under the StateDirectory",
        ),
        (
            "bad-command",
            &[("serve --addr 127.0.0.1:8787", "serve --adr 127.0.0.1:8787")],
            "the unit's command did not start",
        ),
    ];
    std::thread::scope(|scope| {
        for (name, replacements, expected) in cases {
            let path = scratch.0.join(format!("{name}.service"));
            std::fs::write(&path, mutated(unit, replacements)).expect("write the copy");
            scope.spawn(move || {
                let output = check(&[("UNIT", &path)]);
                let text = stderr(&output);
                assert_ne!(output.status.code(), Some(0), "{name}: {text}");
                assert!(text.contains(expected), "{name}: {expected:?} missing:\n{text}");
            });
        }
    });
    // systemd-analyze catches what the static checks do not know, where it is installed.
    if Command::new("systemd-analyze").arg("--version").output().is_ok() {
        let path = scratch.0.join("unknown-key.service");
        std::fs::write(
            &path,
            mutated(
                unit,
                &[("ProtectHome=yes\n", "ProtectHome=yes\nProtectEverything=yes\n")],
            ),
        )
        .expect("write the copy");
        let output = check(&[("UNIT", &path)]);
        assert_ne!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("Unknown key 'ProtectEverything'"),
            "{}",
            stderr(&output)
        );
    } else {
        eprintln!("systemd-analyze is not installed: its part of the unit check is not exercised here");
    }
}
