# Kanary: kanary-webhook and kanary-controller in one image.
#
#   docker build -t kanary:0.1.0 .
#
# The build stage runs the same meson commands as the `image` test suite
# (tests/image/test_image.py reads them from this file), and that suite checks
# that the runtime stage's packages provide every library the binaries load.

ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE} AS build
# Versions are pinned by the Debian release: a pinned package version would
# stop installing as soon as a security update replaces it.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential meson ninja-build pkg-config \
      libjson-c-dev libyaml-dev libcurl4-gnutls-dev libmicrohttpd-dev libgnutls28-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG BUILD_DIR=/build
ARG OUT_DIR=/out
RUN meson setup "$BUILD_DIR" --buildtype=release -Dtests=disabled --prefix=/usr/local \
 && meson compile -C "$BUILD_DIR" \
 && meson install -C "$BUILD_DIR" --destdir "$OUT_DIR"

FROM debian:${DEBIAN_RELEASE}-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libjson-c5 libyaml-0-2 libcurl3-gnutls libmicrohttpd12 libgnutls30 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/local/bin/kanary-webhook /out/usr/local/bin/kanary-controller /usr/local/bin/
# A fixed numeric user, so the kubelet can verify runAsNonRoot.
USER 65532:65532
LABEL org.opencontainers.image.title="kanary" \
      org.opencontainers.image.description="Weighted TCP canary releases on Kubernetes, through HAProxy" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
ENTRYPOINT ["/usr/local/bin/kanary-controller"]
CMD ["--help"]
