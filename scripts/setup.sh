#!/usr/bin/env bash
# Installs what a fresh machine lacks to build Linli:
# clang + libclang-dev for the rocksdb crate (it compiles RocksDB from C++ via bindgen), and
# chromium (headless) and a CJK font for the test that renders the public disclosure page
# (公示) in a real browser and saves a screenshot.
# Safe to run repeatedly: it only calls apt-get when something is missing.
set -euo pipefail

need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
# bindgen (via clang-sys) needs the unversioned libclang.so that only libclang-dev ships.
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || need+=(fonts-wqy-zenhei)
for pkg in "${EXTRA_DEBIAN_PACKAGES[@]:-}"; do
  [ -n "$pkg" ] && ! dpkg -s "$pkg" >/dev/null 2>&1 && need+=("$pkg")
done

if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]} from Debian's packages"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found (install Rust with rustup)"; exit 1; }
