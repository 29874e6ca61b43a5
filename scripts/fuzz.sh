#!/usr/bin/env bash
# Runs every coverage-guided fuzz target of protocol/fuzz (cargo-fuzz, libFuzzer) for SECONDS
# each (default 60), starting from the checked-in seeds (protocol/fuzz/seeds/<target>) and the
# corpus grown by earlier runs (protocol/fuzz/corpus/<target>, not checked in). A crash, a
# panic, a hang (-timeout), a single allocation over 64 MB (-malloc_limit_mb) or memory over
# 1 GB (-rss_limit_mb) fails the run; the input is left in protocol/fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 600 gossip sync
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain, or the stable
# one with RUSTC_BOOTSTRAP=1 (set here when no nightly is installed).
set -euo pipefail
cd "$(dirname "$0")/../protocol"
SECS="${1:-60}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
  exit 2
fi
TOOLCHAIN=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  TOOLCHAIN=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <(cargo "${TOOLCHAIN[@]}" fuzz list)
fi
cargo "${TOOLCHAIN[@]}" fuzz build -O
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== fuzz target $t: ${SECS}s"
  cargo "${TOOLCHAIN[@]}" fuzz run -O "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=64 -max_len=70000 \
    -print_final_stats=1 2>&1 | grep -E '^(stat::|==|#[0-9]+ *DONE|SUMMARY|.*panicked|.*ERROR)' || true
  if [ -n "$(ls -A "fuzz/artifacts/$t" 2>/dev/null)" ]; then
    echo "fuzz target $t failed; inputs in protocol/fuzz/artifacts/$t" >&2
    exit 1
  fi
done
