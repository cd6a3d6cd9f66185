#!/usr/bin/env bash
# Installs a netcheck agent as a systemd service. Usage (as root, on the probe host, with the
# netcheck binary next to this script or already in /usr/local/bin):
#   ./install-agent.sh https://netcheck.example.com nca_…
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SERVER_URL AGENT_TOKEN" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
[ -x /usr/local/bin/netcheck ] || install -m 0755 "$here/../target/release/netcheck" /usr/local/bin/netcheck
install -d -m 0755 /etc/netcheck
umask 077
printf 'NETCHECK_SERVER_URL=%s\nNETCHECK_AGENT_TOKEN=%s\n' "$1" "$2" > /etc/netcheck/agent.env
install -m 0644 "$here/systemd/netcheck-agent.service" /etc/systemd/system/netcheck-agent.service
systemctl daemon-reload
systemctl enable --now netcheck-agent.service
systemctl --no-pager status netcheck-agent.service
