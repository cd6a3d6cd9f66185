#!/usr/bin/env python3
"""Fails when the server's top-level modules import each other in a cycle.

A module is a file or folder right under src/server. It depends on another when any of its
files names it: `crate::server::<m>`, or a chain of `super::` that climbs from the file's own
module up to `server` (`super::<m>` from `server/x.rs`, `super::super::<m>` from
`server/x/y.rs`, and so on at any depth, also as `use super::…::{a, b}`). A cycle means
neither side can be read, tested or moved without the other; the lower one takes what both
need (e.g. `db::users` below `auth` and `users`).
"""
import os
import re
import sys

ROOT = "src/server"


def modules():
    out = set()
    for e in os.listdir(ROOT):
        if e.endswith(".rs") and e != "mod.rs":
            out.add(e[:-3])
        elif os.path.isdir(os.path.join(ROOT, e)):
            out.add(e)
    return out


def edges(mods):
    deps = {m: set() for m in mods}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            parts = os.path.relpath(path, ROOT).split(os.sep)
            if parts == ["mod.rs"]:
                continue
            owner = parts[0][:-3] if parts[0].endswith(".rs") else parts[0]
            # The file's module path below `server`: x/mod.rs is `x`, x/y.rs is `x::y`.
            depth = len(parts) - 1 if parts[-1] == "mod.rs" else len(parts)
            text = re.sub(r"//[^\n]*", "", open(path, encoding="utf-8").read())
            named = re.findall(r"crate::server::(\w+)", text)
            # `super::` repeated `depth` times reaches `server` itself.
            up = r"\b(?:super::){%d}(?!super::)" % depth
            named += re.findall(up + r"(\w+)", text)
            for group in re.findall(up + r"\{([^}]*)\}", text):
                named += re.findall(r"\b(\w+)\b", group)
            deps[owner] |= {n for n in named if n in mods and n != owner}
    return deps


def cycles(deps):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(deps[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return found


def main():
    deps = edges(modules())
    found = cycles(deps)
    for comp in found:
        links = [f"{a} -> {b}" for a in comp for b in sorted(deps[a]) if b in comp]
        print(f"server modules in a cycle: {', '.join(comp)} ({'; '.join(links)})", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
