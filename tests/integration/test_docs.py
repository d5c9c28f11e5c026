"""Documentation matches the code: the README's entity table is the field
table's own rendering, every configuration key of the example file is in the
README, and the example configurations validate."""
import os
import re
import subprocess

import harness as h

t = h.Checker()
readme = open(os.path.join(h.ROOT, "README.md"), encoding="utf-8").read()

out = subprocess.run([h.BRIDGE, "--entities"], capture_output=True, text=True, timeout=20).stdout
m = re.search(r"<!-- entities:begin -->\n(.*?)<!-- entities:end -->", readme, re.S)
t.check("README's entity table is what --entities prints", m and m.group(1) == out,
        "regenerate it: build/toyota2mqtt --entities")

conf = open(os.path.join(h.ROOT, "conf", "toyota2mqtt.conf"), encoding="utf-8").read()
keys, group = set(), []
for line in conf.splitlines():
    line = line.split("#")[0].strip() if not line.strip().startswith("#") else line.strip().lstrip("#").strip()
    g = re.match(r"^(\w+)\s*=\s*$", line) or re.match(r"^(\w+)\s*=\s*\{", line)
    if g:
        group.append(g.group(1))
        continue
    if line.startswith("};"):
        if group:
            group.pop()
        continue
    k = re.match(r"^(\w+)\s*=", line)
    if k and group is not None:
        keys.add(".".join(group + [k.group(1)]))
missing = []
for k in sorted(keys):
    leaf = k.split(".")[-1].replace("_file", "")
    if leaf not in readme:
        missing.append(k)
t.check("every key of conf/toyota2mqtt.conf is documented in the README (%d keys)" % len(keys),
        len(keys) > 30 and not missing, missing)

for f in ("conf/toyota2mqtt.conf", "contrib/docker-demo.conf"):
    r = subprocess.run([h.BRIDGE, "-c", os.path.join(h.ROOT, f), "--check-config"], capture_output=True,
                       text=True, timeout=20)
    t.check("%s validates" % f, r.returncode == 0, r.stderr)

helptext = subprocess.run([h.BRIDGE, "--help"], capture_output=True, text=True, timeout=20).stdout
for opt in ("--config", "--check-config", "--once", "--log-level", "--entities", "--version", "--help"):
    t.check("README and --help both document %s" % opt, opt in helptext and opt in readme)
t.check("README gives the two commands", "make run" in readme and "make test" in readme)
t.done()
