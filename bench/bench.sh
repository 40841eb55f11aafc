#!/usr/bin/env bash
# make bench / make bench-smoke: prerequisites, then bench/run.mjs, then the plot.
#   bash bench/bench.sh full    # installs wrk (apt) and matplotlib (PyPI, bench/.venv)
#   bash bench/bench.sh smoke   # tiny settings; uses wrk only if present, no plot deps
# Expects `make build` done (the Makefile targets depend on it).
set -euo pipefail
MODE=${1:-full}
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

# Upstream emulator (std only: builds in seconds, no downloads).
cargo build --release --quiet --manifest-path bench/upstream/Cargo.toml

if [[ $MODE == full ]]; then
  OUT=bench
  if ! command -v wrk >/dev/null; then
    echo "[bench] installing wrk (apt)"
    SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
  fi
  if ! bench/.venv/bin/python -c 'import matplotlib' 2>/dev/null; then
    echo "[bench] installing matplotlib into bench/.venv"
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet --disable-pip-version-check 'matplotlib>=3.8,<4'
  fi
else
  OUT=bench/.smoke
fi

# run.mjs writes results even when a figure is missing (then exits 1): plot anyway, fail after.
rc=0
node bench/run.mjs --mode "$MODE" --out "$OUT" || rc=$?
[[ -f $OUT/results.json ]] || exit "$rc"

if [[ -x bench/.venv/bin/python ]] && bench/.venv/bin/python -c 'import matplotlib' 2>/dev/null; then
  bench/.venv/bin/python bench/plot.py "$OUT/results.json" "$OUT/latency.png"
elif [[ $MODE == full ]]; then
  echo "[bench] matplotlib missing: no plot" >&2; exit 1
else
  echo "[bench] smoke: matplotlib not installed, plot skipped"
fi
exit "$rc"
