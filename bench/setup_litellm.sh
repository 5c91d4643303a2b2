#!/usr/bin/env bash
# Install LiteLLM's proxy into its own virtualenv (bench/.litellm-venv, gitignored) for the
# side-by-side comparison in bench/run.py. Pinned: 1.108.7 is the version checked on this
# kind of machine (shared/reference/anchors.md 4.1); it is clear of the releases reported as
# compromised (1.82.7, 1.82.8, 1.107.0).
set -euo pipefail
LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.litellm-venv"
if [ -x "$venv/bin/litellm" ] && "$venv/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('litellm') != '$LITELLM_VERSION')"; then
    echo "litellm $LITELLM_VERSION already installed in $venv"
    exit 0
fi
python3 -m venv "$venv"
# seen once: a venv created without pip (ensurepip's run failed quietly); bring pip in
[ -x "$venv/bin/pip" ] || "$venv/bin/python" -m ensurepip --upgrade
"$venv/bin/pip" install --quiet --upgrade pip==25.3
"$venv/bin/pip" install --quiet "litellm[proxy]==$LITELLM_VERSION" 2>&1 | { grep -v "^WARNING: Location" || true; }
echo "installed litellm $LITELLM_VERSION in $venv"
