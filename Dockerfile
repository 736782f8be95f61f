# The wasmless image: one static-ish binary, run as the operator
# (`wasmless operator`) and in every function pod (`wasmless host`).
#
#   docker build -t ghcr.io/wasmless/wasmless:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
# librdkafka is built from source by the rdkafka crate, with OpenSSL (TLS
# and SASL to brokers); the Python runtime is built with componentize-py in
# a virtualenv, the JavaScript runtime is a Rust component.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# The runtimes by the recipe CI tests them with (runtimes/build.sh: the
# JavaScript runtime pre-initialized by this very binary), beside the
# binary rather than in it (WASMLESS_EMBED_RUNTIMES=0, see build.rs).
RUN rustup target add wasm32-wasip2 \
 && WASMLESS_EMBED_RUNTIMES=0 cargo build --release --locked --bin wasmless \
 && cp target/release/wasmless /wasmless \
 && strip /wasmless \
 && WASMLESS_BIN=/wasmless bash runtimes/build.sh \
 && /wasmless runtimes --precompile /precompiled --runtimes-dir runtimes/dist

# The binary needs glibc and zlib (librdkafka's compression), both in the
# slim base, and OpenSSL with the CA roots (librdkafka's TLS; the Kubernetes
# client's roots are compiled in).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wasmless /usr/local/bin/wasmless
# Found by the binary at ../share/wasmless/runtimes.
COPY --from=build /src/runtimes/dist/python.wasm /src/runtimes/dist/js.wasm /usr/local/share/wasmless/runtimes/
# The runtimes' optimized code for `wasmless host`'s engine (its default
# --precompiled-dir), so that no pod compiles an interpreter.
COPY --from=build /precompiled /usr/local/share/wasmless/precompiled
# A numeric non-root user, so that `runAsNonRoot` can verify it.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/wasmless"]
CMD ["host"]
