#!/usr/bin/env bash
# clang's thread-safety analysis over our code: every translation unit of the build that uses
# the annotated mutex (sluice/core/mutex.h, itself or through a header it includes) is compiled by
# clang++ with -fsyntax-only -Wthread-safety -Werror=thread-safety, using the build's own
# flags from compile_commands.json. Fails naming each member touched without its mutex held.
#   scripts/check-thread-safety.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
command -v clang++ >/dev/null || { echo "check-thread-safety: clang++ missing (scripts/setup.sh installs it)" >&2; exit 1; }
python3 - "$root" "$build" <<'PY'
import json, os, re, shlex, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

root, build = sys.argv[1], sys.argv[2]
entries = json.load(open(os.path.join(build, "compile_commands.json")))
marker = re.compile(r'#include "sluice/core/mutex.h"')

included = re.compile(r'^#include "([^"]+)"', re.M)

def uses_mutex(source, include_dirs):
    """The source, or a header it includes directly (found on its include path), uses it."""
    text = open(source, errors="replace").read()
    if marker.search(text):
        return True
    for name in included.findall(text):
        for d in [os.path.dirname(source)] + include_dirs:
            path = os.path.join(d, name)
            if os.path.exists(path):
                if marker.search(open(path, errors="replace").read()):
                    return True
                break
    return False

jobs = []
for e in entries:
    source = e["file"]
    if not source.startswith(root) or "/build" in source[len(root):]:
        continue
    args = shlex.split(e["command"])
    include_dirs = [os.path.join(e["directory"], a[2:]) for a in args if a.startswith("-I")]
    if not uses_mutex(source, include_dirs):
        continue
    out = []
    skip = False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-c"):
            skip = a == "-o"
            continue
        if a == "-Werror" or a.startswith("-Wno-maybe-uninitialized") or a == "-Wno-tsan":
            continue
        if a == source:
            continue
        out.append(a)
    jobs.append((source, e["directory"], ["clang++"] + out + ["-fsyntax-only", "-Wthread-safety",
               "-Werror=thread-safety", "-Wno-unknown-warning-option", source]))

def run(job):
    source, directory, cmd = job
    r = subprocess.run(cmd, cwd=directory, capture_output=True, text=True)
    return source, r.returncode, r.stderr

failed = 0
with ThreadPoolExecutor(max_workers=int(os.environ.get("SLUICE_JOBS", "2"))) as pool:
    for source, code, err in pool.map(run, jobs):
        if code != 0:
            failed += 1
            print(err, end="")
print(f"check-thread-safety: {len(jobs)} translation units, {failed} failed")
sys.exit(1 if failed else 0)
PY
