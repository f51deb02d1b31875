# syntax=docker/dockerfile:1
# The gochat binary (standalone, control, edge, config) and the load generator.
#   docker build -t gochat .
#   docker run -p 8080:8080 -p 8090:8090 -v gochat-data:/data gochat
# Build stage: the whole workspace, release profile, locked dependencies.
# librdkafka is built from source by rdkafka-sys (C toolchain, make, zlib,
# OpenSSL for Kafka over TLS); protoc comes vendored; every other TLS client
# and server is rustls.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake perl python3 zlib1g-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin gochat --bin gochat-loadgen \
 && mkdir -p /out \
 && cp target/release/gochat target/release/gochat-loadgen /out/

# Runtime stage: Debian slim, the CA bundle (APNs, FCM, TLS to the engines),
# an unprivileged user, data under /data.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data gochat \
 && mkdir -p /data && chown gochat /data
COPY --from=build /out/gochat /out/gochat-loadgen /usr/local/bin/
USER 10001
WORKDIR /data
VOLUME /data
# REST + web client, WebSocket, gRPC, gateway operations endpoints.
EXPOSE 8080 8090 9002 9091
ENTRYPOINT ["gochat"]
CMD ["standalone", "--data-dir", "/data", "--http-addr", "0.0.0.0:8080", "--ws-addr", "0.0.0.0:8090"]
