#!/usr/bin/env bash
# Peer comparison: Prometheus blackbox_exporter probing the same kind of local targets
# (TCP connect, HTTP GET, ICMP echo on loopback), driven by wrk on its /probe endpoint.
# Prints probes per CPU-second of the exporter, for comparison with the agent figures of
# `cargo bench --bench e2e` (see docs/benchmarks.md). Debian packages, installed if missing.
set -euo pipefail
command -v prometheus-blackbox-exporter >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1 \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-blackbox-exporter wrk >/dev/null; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
cat > "$dir/bb.yml" <<'YML'
modules:
  tcp_connect: { prober: tcp, timeout: 2s }
  http_2xx: { prober: http, timeout: 2s }
  icmp: { prober: icmp, timeout: 2s }
YML
mkdir -p "$dir/www" && echo ok > "$dir/www/index.html"
python3 -m http.server 18081 --bind 127.0.0.1 --directory "$dir/www" >/dev/null 2>&1 &
prometheus-blackbox-exporter --config.file="$dir/bb.yml" --web.listen-address=127.0.0.1:19115 --log.level=error &
bb=$!
sleep 1
cpu() { awk '{print $14 + $15}' "/proc/$bb/stat"; }
for probe in "tcp_connect:127.0.0.1:18081" "http_2xx:http://127.0.0.1:18081/" "icmp:127.0.0.1"; do
  module=${probe%%:*}; target=${probe#*:}
  before=$(cpu)
  out=$(wrk -t2 -c8 -d10s "http://127.0.0.1:19115/probe?module=$module&target=$target")
  after=$(cpu)
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  python3 -c "import sys; r=$requests; c=($after-$before)/100; print(f'blackbox_exporter {sys.argv[1]}: {r} probes in {c:.2f} CPU-seconds = {r/max(c,0.01):.0f} probes per CPU-second')" "$module"
done
ps -o rss= -p $bb | awk '{printf "blackbox_exporter RSS after the runs: %d KiB\n", $1}'
