#!/usr/bin/env python3
"""Prints the compile units that took longest in a `cargo build --timings`
report (target/cargo-timings/cargo-timing.html): where a cold build's
minutes go."""

import json
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "target/cargo-timings/cargo-timing.html"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 15
try:
    html = open(path, encoding="utf-8").read()
except OSError as e:
    sys.exit(f"{path}: {e}")
found = re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S)
if not found:
    sys.exit(f"{path}: no UNIT_DATA in this cargo timing report")
units = json.loads(found.group(1))
total = sum(u["duration"] for u in units)
print(f"{len(units)} units, {total:.0f} s of compiling in all; the slowest:")
for u in sorted(units, key=lambda u: -u["duration"])[:count]:
    target = u.get("target", "").strip()
    print(f"  {u['duration']:7.1f} s  {u['name']} {u['version']} {target}".rstrip())
