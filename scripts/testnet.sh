#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs the Linli scenario.
# Extra arguments are passed to `linli-testnet`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/linli-target}"
cargo build --release --locked --workspace --bins
exec "$CARGO_TARGET_DIR/release/linli-testnet" "$@"
