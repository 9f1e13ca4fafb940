# Multi-stage build: compile on the official Swift image, run on slim Debian.
FROM swift:6.0-bookworm AS build
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      pkg-config libhiredis-dev libmongoc-dev libbson-dev libmicrohttpd-dev libjansson-dev \
      libssl-dev libcrypt-dev libzip-dev libcurl4-openssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Shared Shared
COPY Services Services
COPY Tests Tests
RUN swift build -c release --static-swift-stdlib && mkdir /out && \
    cp "$(swift build -c release --show-bin-path)"/{gateway,sessions,settings,feedback,canvas,uc-admin} /out/

FROM debian:bookworm-slim
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      libhiredis0.14 libmongoc-1.0-0 libbson-1.0-0 libmicrohttpd12 libjansson4 libssl3 \
      libcrypt1 libzip4 libcurl4 ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
ENV HOST=0.0.0.0
USER nobody
