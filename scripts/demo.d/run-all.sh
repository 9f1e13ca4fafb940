#!/usr/bin/env bash
# Runs every demo part in this directory (scripts/demo.sh calls it at the end).
set -euo pipefail
here="$(dirname "$0")"
for part in "$here"/*.sh; do
  [ "$(basename "$part")" = "run-all.sh" ] && continue
  "$part"
done
