# syntax=docker/dockerfile:1
#
# Pronto's image, for linux/amd64 and linux/arm64 (Raspberry Pi 4/5 with a
# 64-bit OS):
#
#   docker buildx build --platform linux/arm64,linux/amd64 -t pronto .
#
# The builder always runs on the build machine's own platform and
# cross-compiles for the target one, so an arm64 image builds on a PC in
# minutes instead of under emulation. TLS is rustls only: no OpenSSL anywhere.
# The runtime is distroless (glibc, CA certificates, tzdata and nothing else:
# no shell, no curl), so the health check is the binary itself: `pronto health`.
# The Smart Turn end-of-turn model and the ONNX Runtime library that runs it
# are fetched from the Python package index at build time (scripts/fetch-models.sh)
# and shipped in /app/models; nothing is downloaded when the container runs.

ARG RUST_VERSION=1.95

# The model and ONNX Runtime for the TARGET architecture. Nothing downloaded is
# executed, so this runs on the build machine's platform whatever the target,
# in its own stage (cached apart from the Rust build, and run alongside it).
# The Rust image has python3; pip comes from Debian (python3-pip) in case the
# image lacks it. pip only downloads here, so Debian's "externally managed"
# guard (which stops `pip install`) does not apply.
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS models
ARG TARGETARCH
RUN set -eux; \
    apt-get update; apt-get install -y --no-install-recommends python3-pip; rm -rf /var/lib/apt/lists/*
COPY scripts/fetch-models.sh /fetch-models.sh
RUN /fetch-models.sh /models "$TARGETARCH"

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS builder
ARG TARGETARCH
ARG BUILDARCH
WORKDIR /src
# Stripped: symbols are for `perf` on a development machine. Set for both
# builds below: a profile setting is part of every crate's fingerprint, and
# setting it only for the second build would rebuild all the dependencies.
ENV CARGO_PROFILE_RELEASE_STRIP=true

# The Rust target and, when it differs from the build machine, Debian's cross
# C toolchain: SQLite, libfvad (the VAD), aws-lc (rustls' crypto) and libopus
# (Moshi's codec, built by the `opus` crate with cmake and linked statically)
# are C. The same settings as `.ci/run`'s aarch64 build.
RUN set -eux; \
    apt-get update; apt-get install -y --no-install-recommends cmake; rm -rf /var/lib/apt/lists/*; \
    case "$TARGETARCH" in \
      arm64) target=aarch64-unknown-linux-gnu; gnu=aarch64-linux-gnu; pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      amd64) target=x86_64-unknown-linux-gnu;  gnu=x86_64-linux-gnu;  pkgs="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      *) echo "unsupported TARGETARCH=$TARGETARCH (linux/amd64 and linux/arm64 are)"; exit 1 ;; \
    esac; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update; apt-get install -y --no-install-recommends $pkgs; rm -rf /var/lib/apt/lists/*; \
      rustup target add "$target"; \
      printf 'export CC_%s=%s-gcc AR_%s=%s-ar CARGO_TARGET_%s_LINKER=%s-gcc\n' \
        "$(echo $target | tr - _)" "$gnu" "$(echo $target | tr - _)" "$gnu" \
        "$(echo $target | tr a-z- A-Z_)" "$gnu" > /cross-env; \
    else \
      : > /cross-env; \
    fi; \
    echo "$target" > /target

# Dependencies in their own layer: built from the manifests alone (with empty
# stand-ins for Pronto's own sources), so a change to src/ rebuilds only Pronto.
COPY Cargo.toml Cargo.lock ./
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    set -eux; . /cross-env; \
    mkdir -p src benches; \
    echo 'fn main() {}' > src/main.rs; touch src/lib.rs; \
    for bench in agent_latency audio_path transport_floor; do echo 'fn main() {}' > benches/$bench.rs; done; \
    cargo build --release --locked --target "$(cat /target)"; \
    rm -rf src benches

# Pronto itself: only this crate compiles here.
COPY src src
COPY config config
COPY prompts prompts
COPY migrations migrations
# The dashboard's page, built into the binary (src/http/dashboard.rs).
COPY web web
COPY benches benches
COPY tests/fixtures/hello.wav tests/fixtures/hello.wav
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    set -eux; . /cross-env; \
    touch src/main.rs src/lib.rs; \
    cargo build --release --locked --target "$(cat /target)"; \
    cp "target/$(cat /target)/release/pronto" /pronto; \
    mkdir -p /data-skeleton/recordings

# Runtime: distroless with glibc (the "cc" flavour, for libgcc_s).
FROM gcr.io/distroless/cc-debian12
# The configuration and prompt are baked in; mount ./config and ./prompts over
# them to change them without rebuilding (docker-compose.yml does).
WORKDIR /app
COPY --from=builder /pronto /usr/local/bin/pronto
COPY config /app/config
COPY prompts /app/prompts
# smart-turn-v3.2-cpu.onnx and libonnxruntime.so.1.21.0 (it needs glibc >= 2.27
# and libstdc++, both in this cc image): the directory to give SmartTurn::find,
# `models` relative to the working directory. Read-only, owned by root.
COPY --from=models /models /app/models
# The call history and recordings live in /data, owned by the user Pronto runs
# as. 1000 is the first user on Raspberry Pi OS and most Linux installs, so a
# ./data folder made by that user is writable from inside (docker-compose.yml
# lets PRONTO_UID/PRONTO_GID override it).
COPY --from=builder --chown=1000:1000 /data-skeleton /data
USER 1000:1000
ENV DATABASE_URL=sqlite:///data/pronto.db \
    PRONTO_STORE_RECORDINGS_DIR=/data/recordings \
    PORT=8080 \
    BIND=0.0.0.0
VOLUME ["/data"]
EXPOSE 8080
# The file limit is the container's (an image cannot set it): Pronto raises
# its soft limit to the hard one and caps its connections below it
# (server.max_connections). docker-compose.yml sets `ulimits: nofile`; with
# `docker run`, pass `--ulimit nofile=65536:65536`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/pronto", "health"]
ENTRYPOINT ["/usr/local/bin/pronto"]
CMD ["serve"]
