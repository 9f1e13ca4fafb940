#!/usr/bin/env bash
# Installs what building and running needs on Debian: C libraries, Redis, the pinned MongoDB
# stand-in in ./.venv, and Chromium for the test that renders a generated page. Does nothing
# for what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pkg-config libhiredis-dev libmongoc-dev libbson-dev libmicrohttpd-dev libjansson-dev
          libssl-dev libcrypt-dev libzip-dev libcurl4-openssl-dev redis-server redis-tools curl
          python3-venv chromium wrk)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/nx-27017 ]; then
  echo "installing the MongoDB stand-in (nx-27017) into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check nx-27017==0.8.1 neosqlite==1.17.2
fi

# Schemathesis, for the contract test that `make test` runs (scripts/contract-test.sh).
if [ ! -x .venv/bin/schemathesis ]; then
  echo "installing schemathesis into .venv"
  .venv/bin/pip install -q --disable-pip-version-check schemathesis==4.32.5
fi
