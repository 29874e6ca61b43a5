#!/usr/bin/env bash
# The benchmark command: builds the workspace in release mode (opt-level 3, thin LTO) and runs
# `linli-bench`, which prints one table and writes it as JSON (default ./linli-bench.json).
# Extra arguments go to linli-bench, e.g. `--smoke` (tiny sizes, seconds), `--entries 200000`,
# `--json out.json`, `--compare previous.json`. See `linli-bench --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/linli-target}"
cargo build --release --workspace --bins --locked
exec "$CARGO_TARGET_DIR/release/linli-bench" --linli "$CARGO_TARGET_DIR/release/linli" "$@"
