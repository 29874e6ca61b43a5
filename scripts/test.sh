#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Build cache outside the clone (as CI systems keep one); override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/linli-target}"
cargo fmt --all -- --check
# The protocol crate stays pure: no async runtime, database or network in its dependency tree.
if cargo tree -p linli-protocol -e normal --locked | grep -E '^[^a-z]*(tokio|rocksdb|librocksdb-sys|libp2p) '; then
  echo "linli-protocol must not depend on tokio, rocksdb or libp2p" >&2
  exit 1
fi
cargo clippy --workspace --all-targets --locked -- -D warnings
# The testnet's test runs linli-testnet, which spawns linli-node and linli from the same directory.
cargo build --workspace --bins --locked
cargo test --workspace --locked
# Fuzz targets, a few seconds each, when cargo-fuzz is installed (scripts/fuzz.sh runs them longer).
if cargo fuzz --version >/dev/null 2>&1; then
  bash scripts/fuzz.sh "${LINLI_FUZZ_SECONDS:-5}"
else
  echo "cargo-fuzz is not installed: fuzz targets skipped (cargo install cargo-fuzz --locked)"
fi
