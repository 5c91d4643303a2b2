#!/usr/bin/env bash
# System packages the test suite needs (Debian). Installs only what is missing; needs root.
set -euo pipefail
needed=()
for pkg in $(cat "$(dirname "$0")/system-packages.txt" | grep -v '^#'); do
    dpkg -s "$pkg" >/dev/null 2>&1 || needed+=("$pkg")
done
if [ ${#needed[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${needed[*]} (run as root or install them)" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
