#!/usr/bin/env python3
"""Import cycles between bnlab's modules: which files (and which top-level folders) import each
other, directly or round a loop. Reads every `crate::`, `super::` and `self::` path in src/ (the
library) and src/cli (the command), resolves re-exports (`pub use`) to the file that defines the
item, and prints each cycle (a strongly connected component of more than one module). Exit 1 if
there is one. A parent declaring its children (`mod x;`) is not an import.

    python3 scripts/module_cycles.py [--folders]
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_files():
    """{module path tuple: file} for the library ('lib',) and the command ('bin',)."""
    mods = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, ROOT)[:-3].split(os.sep)
            if rel == ["lib"]:
                path = ("lib",)
            elif rel == ["main"]:
                path = ("bin",)
            elif rel[0] == "cli":
                path = ("bin",) + tuple(p for p in rel if p != "mod")
            else:
                path = ("lib",) + tuple(p for p in rel if p != "mod")
            mods[path] = full
    return mods


def strip_comments(text):
    """The code without comments, string literals and character literals."""
    text = re.sub(r'r(#*)".*?"\1', '""', text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text, flags=re.S)
    text = re.sub(r"'(?:\\.|[^'\\])'", "' '", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def expand_use(tree):
    """`a::{b, c::{d}}` -> ['a::b', 'a::c::d']."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [re.sub(r"\s+as\s+\w+$", "", tree)]
    prefix, inner = tree[:i], tree[i + 1 : tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            out += [prefix + q for q in expand_use(p)]
    return out


def paths_in(text):
    """(is_pub_use, path) for every use tree and inline path of a file."""
    found = []
    for m in re.finditer(r"(pub(?:\([^)]*\))?\s+)?\buse\s+([^;]+);", text):
        for p in expand_use(m.group(2)):
            found.append((bool(m.group(1)), re.sub(r"\s+", "", p)))
    body = re.sub(r"(pub(?:\([^)]*\))?\s+)?\buse\s+[^;]+;", "", text)
    for m in re.finditer(r"\b(?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+", body):
        found.append((False, m.group(0)))
    return found


def absolute(path, here, is_mod_file):
    """A path's segments from the crate root, as seen from module `here`."""
    segs = path.split("::")
    base = list(here)
    # a file's `self`/`super` is relative to its own module
    cur = base
    if segs[0] == "crate":
        return [here[0]] + segs[1:]
    if segs[0] in ("bnlab",):
        return ["lib"] + segs[1:]
    out = list(cur)
    while segs and segs[0] in ("self", "super"):
        if segs.pop(0) == "super":
            out.pop()
    if out == [] or (not segs and not out):
        return None
    # a plain `use name::...` is relative to the module itself (2018 edition)
    return out + segs


def resolve(segs, mods, reexports, depth=0):
    """The defining module of the item a path names."""
    if segs is None:
        return None
    segs = [s for s in segs if s != "self"]
    for n in range(len(segs), 0, -1):
        mod = tuple(segs[:n])
        if mod in mods:
            rest = segs[n:]
            if rest and depth < 10 and (mod, rest[0]) in reexports:
                return resolve(reexports[(mod, rest[0])] + rest[1:], mods, reexports, depth + 1)
            return mod
    return None


def main():
    folders = "--folders" in sys.argv
    mods = module_files()
    texts = {m: strip_comments(open(f).read()) for m, f in mods.items()}
    reexports = {}
    for m, t in texts.items():
        for is_pub, p in paths_in(t):
            if is_pub:
                segs = absolute(p, m, True)
                if segs:
                    reexports[(m, segs[-1])] = segs
    edges = {m: set() for m in mods}
    for m, t in texts.items():
        for _, p in paths_in(t):
            first = p.split("::")[0]
            if first not in ("crate", "super", "self", "bnlab") and not (
                (m + (first,)) in mods or any(k[: len(m) + 1] == m + (first,) for k in mods)
            ):
                continue  # an external crate or std
            target = resolve(absolute(p, m, True), mods, reexports)
            if target and target != m and target[: len(m)] != m:
                edges[m].add(target)

    def group(mod):
        if not folders:
            return mod
        return mod[:2] if len(mod) > 1 else mod

    g = {}
    for a, bs in edges.items():
        for b in bs:
            ga, gb = group(a), group(b)
            if ga != gb:
                g.setdefault(ga, set()).add(gb)
            g.setdefault(gb, set())
        g.setdefault(group(a), set())
    # Tarjan's strongly connected components
    index, low, stack, on, sccs = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
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
                sccs.append(comp)

    for v in sorted(g):
        if v not in index:
            visit(v)
    name = lambda m: "::".join(m)
    for comp in sccs:
        members = set(comp)
        print("cycle: " + ", ".join(sorted(map(name, comp))))
        for a in sorted(comp):
            for b in sorted(g[a] & members):
                print(f"  {name(a)} -> {name(b)}")
    if not sccs:
        print(f"no cycles among {len(g)} {'folders' if folders else 'modules'}")
    return 1 if sccs else 0


if __name__ == "__main__":
    sys.exit(main())
