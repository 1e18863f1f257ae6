#!/usr/bin/env bash
# Prints what the layout rules of CONTRIBUTING.md watch, so anyone can rerun the evidence:
# Rust files over 600 lines, functions over 100 lines, imports inside `shared/src` that run
# against the layer order (domain, ports, flows, adapters, app, http: a layer uses only the
# ones before it), and modules of a layer that import each other, however far round. Exit
# status 0 whatever it finds: it reports, the tests enforce.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 - <<'PY'
import re
from pathlib import Path

files = [p for p in Path(".").rglob("*.rs")
         if not any(part in {"target", ".work", "node_modules", ".venv"} for part in p.parts)]

print("## Files over 600 lines")
sizes = sorted(((sum(1 for _ in p.open(encoding="utf-8")), p) for p in files), reverse=True)
for lines, path in sizes:
    if lines > 600:
        print(f"{lines:6d}  {path}")

print("\n## Functions over 100 lines")
start = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
long = []
for path in files:
    text = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(text):
        match = start.match(text[i])
        if not match:
            i += 1
            continue
        depth, opened, j, raw = 0, False, i, False
        while j < len(text):
            line = text[j]
            if raw:
                raw = '"#' not in line
                j += 1
                continue
            if 'r#"' in line and '"#' not in line.split('r#"', 1)[1]:
                raw = True
                line = line.split('r#"', 1)[0]
            code = re.sub(r'r#".*?"#', '""', line)
            code = re.sub(r'"(\\.|[^"\\])*"', '""', code)
            code = re.sub(r"'(\\.|[^'\\])'", "''", code).split("//")[0]
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if (opened and depth <= 0) or (not opened and code.rstrip().endswith(";")):
                break
            j += 1
        if opened and j - i + 1 > 100:
            long.append((j - i + 1, f"{path}:{i + 1}", match.group(6)))
        i = j + 1 if opened else i + 1
for lines, where, name in sorted(long, reverse=True):
    print(f"{lines:6d}  {where}  {name}")

print("\n## Imports against the layer order (shared/src)")
order = ["domain", "ports", "flows", "adapters", "app", "http"]
root = Path("shared/src")
for path in sorted(root.rglob("*.rs")):
    layer = path.relative_to(root).parts[0].removesuffix(".rs")
    if layer not in order:
        continue
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for used in re.findall(r"crate::(\w+)", line.split("//")[0]):
            if used in order and order.index(used) > order.index(layer):
                print(f"{path}:{n}  {layer} -> {used}")

print("\n## Modules of a layer that import each other (shared/src)")
circles = set()
for layer in order:
    base = root / layer
    if not base.is_dir():
        continue
    modules = {p.name.removesuffix(".rs") for p in base.iterdir()} - {"mod"}
    uses = {}
    for path in sorted(base.rglob("*.rs")):
        parts = path.relative_to(base).parts
        module = parts[0].removesuffix(".rs")
        if module == "mod" or path.name == "tests.rs":
            continue
        code = path.read_text(encoding="utf-8").split("#[cfg(test)]")[0]
        used = set(re.findall(rf"crate::{layer}::(\w+)", code))
        relative = "super::" * len(parts)
        used |= set(re.findall(rf"(?<![:\w]){re.escape(relative)}(\w+)", code))
        if len(parts) == 1:
            for group in re.findall(r"(?<![:\w])super::\{([^}]*)\}", code):
                used |= set(re.findall(r"(\w+)", group))
        uses.setdefault(module, set()).update(u for u in used if u in modules and u != module)
    def walk(path):
        for nxt in sorted(uses.get(path[-1], ())):
            if nxt in path:
                circle = path[path.index(nxt):] + [nxt]
                circles.add(f"{layer}: " + " -> ".join(circle))
            elif len(path) < 8:
                walk(path + [nxt])
    for module in sorted(uses):
        walk([module])
for circle in sorted(circles):
    print(circle)
PY
