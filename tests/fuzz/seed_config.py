#!/usr/bin/env python3
"""Writes the config fuzz target's seed corpus (tests/fuzz/corpus/config/): the example
config, every TOML snippet of the config unit tests (raw strings R"(...)") and every config
an end-to-end test writes (heredocs in tests/e2e/*.sh, shell variables replaced by plain
words). Run it again when those change; the files are committed."""
import hashlib
import pathlib
import re

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "tests/fuzz/corpus/config"
out.mkdir(parents=True, exist_ok=True)
seeds = [(root / "config/fdlinkd.toml").read_text()]
for src in sorted((root / "tests/unit").glob("*.cpp")):
    seeds += re.findall(r'R"\((.*?)\)"', src.read_text(), re.S)
for sh in sorted((root / "tests/e2e").glob("*.sh")):
    for body in re.findall(r"<<'?EOT'?\n(.*?)\nEOT\n", sh.read_text(), re.S):
        body = re.sub(r"\$\(([^()]*)\)", "x", body)  # command substitutions
        body = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", r"\1", body)
        seeds.append(body + "\n")
kept = 0
for s in seeds:
    if "[" not in s and "=" not in s:
        continue  # not TOML
    name = hashlib.sha1(s.encode()).hexdigest()[:16]
    (out / name).write_text(s)
    kept += 1
print(f"seed_config: {kept} seeds in {out}")
