#!/usr/bin/env bash
# Dependency audit for `make test`: pip-audit over the installed environment (the
# project's pinned dependencies and their dependencies). It needs the package index's
# vulnerability service: when that cannot be reached, it says so loudly and does not fail
# the build; it fails only when vulnerabilities are found.
set -u
BIN=${BIN:-.venv/bin}
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
"$BIN/pip-audit" --local --skip-editable --progress-spinner off -f json -o "$out" 2>"$err"
rc=$?
found=$("$BIN/python" - "$out" <<'PY'
import json, sys
try:
    report = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
for dep in report.get("dependencies", []):
    for vuln in dep.get("vulns", []):
        fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
        print(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})")
PY
)
if [ -n "$found" ]; then
    echo "pip-audit: known vulnerabilities in installed packages:" >&2
    echo "$found" >&2
    exit 1
fi
if [ "$rc" -eq 0 ]; then
    echo "pip-audit: no known vulnerabilities"
    exit 0
fi
echo "pip-audit: WARNING: the audit could not run (vulnerability service unreachable?);" \
    "dependencies were NOT audited. Its error:" >&2
tail -n 3 "$err" >&2
exit 0
