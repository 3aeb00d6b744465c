# The self-hosted fallback endpoint, `twiml-fallback serve`, as a container image.
#
#   docker build -t twiml-fallback .
#   docker run -d --name twiml-fallback -p 8787:8787 -e TWILIO_AUTH_TOKEN=... twiml-fallback
#
# Configured by the environment, as serve reads it: TWILIO_AUTH_TOKEN (and
# TWILIO_AUTH_TOKEN_SECONDARY during a rotation), the FALLBACK_* variables (README: "Configure
# it"), RUST_LOG. A whole configuration file: mount it and pass --config, e.g.
#   docker run ... -v "$PWD/fallback.toml:/etc/twiml-fallback/fallback.toml:ro" twiml-fallback \
#     serve --addr 0.0.0.0:8787 --config /etc/twiml-fallback/fallback.toml
# Behind a TLS proxy or tunnel add --public-url https://fallback.example.com (the URL Twilio calls).
#
# The build stage's Rust is the oldest that Cargo.lock builds with (quick-xml 0.42 needs 1.86);
# both stages are Debian bookworm, so the binary runs on the glibc it was linked against.
# scripts/check-dockerfile.sh builds and runs this image where a container engine works, and checks
# this file strictly where none does.

FROM rust:1.89.0-slim-bookworm AS build
WORKDIR /src
# The workspace: its manifest and lock, and its members (the e2e tests crate is a member, so cargo
# needs it to load the workspace; it is not built).
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY tests ./tests
RUN cargo build --release --locked -p twiml-fallback-cli --bin twiml-fallback \
    && cp target/release/twiml-fallback /usr/local/bin/twiml-fallback

FROM debian:bookworm-slim AS runtime
# CA certificates for the HTTPS alerts and recovery requests (rustls reads the system's roots).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 twiml-fallback \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin twiml-fallback
COPY --from=build /usr/local/bin/twiml-fallback /usr/local/bin/twiml-fallback
# The outage inbox (SQLite): every missed message and call, kept across restarts in a volume
# owned by the runtime user (`docker run -v twiml-fallback-data:/data …`).
RUN install -d -o 10001 -g 10001 -m 0700 /data
VOLUME ["/data"]
# Numeric, so a runtime can check it is not root (Kubernetes' runAsNonRoot).
USER 10001:10001
# serve's default port.
EXPOSE 8787
# The binary checks itself: `twiml-fallback healthcheck` GETs http://127.0.0.1:8787/healthz and
# exits 0 on 200 (a slim image has no curl). Change its --url if you change the port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/twiml-fallback", "healthcheck"]
# SIGTERM (docker stop) makes serve finish its requests and exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/twiml-fallback"]
CMD ["serve", "--addr", "0.0.0.0:8787", "--inbox", "/data/inbox.sqlite3"]
