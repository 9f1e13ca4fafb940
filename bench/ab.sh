#!/usr/bin/env bash
# Alternates bench/cpu.sh runs of two builds, so that the machine's drift hits both alike.
#   bench/ab.sh OTHER_TREE [ROUNDS]   OTHER_TREE: a worktree (git worktree add) of the commit to
#   compare with, built there with `swift build -c release`; ROUNDS pairs (default 4) of
#   CONNS=64 D=4 runs. Prints every run, then each side's median req/s and µs per request.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
other=$(cd "${1:?usage: bench/ab.sh OTHER_TREE [ROUNDS]}" && pwd)
rounds=${2:-4}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$rounds"); do
  for tree in "$other" "$here"; do
    side=$([ "$tree" = "$here" ] && echo this || echo other)
    line=$(cd "$tree" && CONNS=64 D=${D:-4} bash bench/cpu.sh 2>&1 | grep -E "Requests/sec|^c=" \
      | paste - - | awk '{print $2, $5, $7, $9}')
    echo "$side $line" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if len(line.split()) == 5]
for side in ("other", "this"):
    mine = [r for r in rows if r[0] == side]
    if not mine:
        continue
    med = lambda i: statistics.median(float(r[i].rstrip("us")) for r in mine)
    print(f"{side}: median {med(1):.0f} req/s; gateway {med(2):.1f} us, sessions {med(3):.1f} us,"
          f" redis {med(4):.1f} us per request")
PY
