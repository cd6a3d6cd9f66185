#!/usr/bin/env bash
# Rules of the tree that the compiler does not keep, checked on every test run:
# - no Rust or TypeScript source over 600 lines (generated API types excepted): a file that
#   long holds more than one idea;
# - the roles stay apart: the server and the agent never import each other. (`proto`, the wire
#   types, is a crate of its own that cannot import them: the compiler keeps that boundary.)
# - the server's top-level modules import each other without cycles (server-cycles.py).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
while read -r lines file; do
  [ "$file" = total ] && continue
  if [ "$lines" -gt 600 ]; then
    echo "$file: $lines lines (at most 600; split it along its seams)" >&2
    status=1
  fi
done < <(git ls-files '*.rs' '*.ts' '*.tsx' \
           | grep -v '^frontend/src/api/schema.d.ts$' | xargs wc -l)
boundary() { # boundary <dir> <pattern> <why>  (comments may name anything)
  if grep -rnE "$2" "$1" --include='*.rs' | grep -vE '^[^:]+:[0-9]+: *//'; then
    echo "the lines above cross a boundary: $3" >&2
    status=1
  fi
}
boundary src/agent 'crate::server' "the agent does not import the server"
boundary src/server 'crate::agent' "the server does not import the agent"
python3 scripts/server-cycles.py || status=1
[ "$status" -eq 0 ] && echo "conventions: ok"
exit "$status"
