# The wasmless image: one static-ish binary, run as the operator
# (`wasmless operator`) and in every function pod (`wasmless host`).
#
#   docker build -t ghcr.io/wasmless/wasmless:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
# librdkafka is built from source by the rdkafka crate.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin wasmless \
 && cp target/release/wasmless /wasmless \
 && strip /wasmless

# The binary needs glibc and zlib (librdkafka's compression), both in the
# slim base; TLS roots are compiled in.
FROM debian:bookworm-slim
COPY --from=build /wasmless /usr/local/bin/wasmless
# A numeric non-root user, so that `runAsNonRoot` can verify it.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/wasmless"]
CMD ["host"]
