# The `weir` image: the topology runner, chart server, sources and data-path Jobs all run from
# it on Kubernetes (Kafka and ZooKeeper use the official Apache images). Build it with
#
#   docker build -t ghcr.io/weir-sandbox/weir:0.1.0 .
#
# and point a run at another tag with `weir run --backend kubernetes --weir-image IMAGE`
# (or WEIR_IMAGE); each service's image is also its `image` parameter.
#
# `--build-arg WEIR_BINARY=prebuilt` skips the Rust stage and takes an already built
# `target/release/weir` from the build context instead (built on Debian bookworm, as the
# runtime stage is): the local Kubernetes sandbox builds its image this way.
ARG WEIR_BINARY=build

FROM rust:1.95-bookworm AS build
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends cmake pkg-config libssl-dev \
      libcurl4-openssl-dev zlib1g-dev libfontconfig1-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p weir --bin weir \
 && strip target/release/weir

FROM scratch AS prebuilt
COPY target/release/weir /src/target/release/weir

FROM ${WEIR_BINARY} AS binary

FROM debian:bookworm-slim
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends ca-certificates libssl3 libcurl4 zlib1g \
      libfontconfig1 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/weir --create-home weir
COPY --from=binary /src/target/release/weir /usr/local/bin/weir
USER 10001
WORKDIR /var/lib/weir
ENTRYPOINT ["/usr/local/bin/weir"]
CMD ["--help"]
