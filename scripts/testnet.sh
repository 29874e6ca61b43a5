#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs the Linli scenario.
# Extra arguments are passed to `linli-testnet`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/linli-target}"
# The dev profile compiles every dependency with opt-level 3 (Cargo.toml), and shares the
# build cache with the test command.
cargo build --workspace --bins --locked
exec "$CARGO_TARGET_DIR/debug/linli-testnet" "$@"
