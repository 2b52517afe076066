#!/usr/bin/env bash
# The CI fuzz step (.ci/run): each cargo-fuzz target for FUZZ_SECONDS (default 25) from its
# committed seeds under fuzz/seeds/, with debug assertions (overflow checks) and without
# AddressSanitizer (`-s none`: the fuzzed code is safe Rust; the sanitizer cost a quarter more
# build time and ~2.5x fewer executions). A crash, a panic or a hang (-timeout) fails, and
# libFuzzer leaves the input under fuzz/artifacts/TARGET/. Measured on the 2-core CI machine
# (QUALITY.md): cargo-fuzz install ~70 s (once), the build 3-4 min, then 25 s a target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-25}
targets=(itch capture lobster rules flow)

if ! command -v rustup >/dev/null 2>&1; then
  # A bare machine's Debian cargo has no nightly toolchain to build the targets with.
  echo "no rustup (so no nightly toolchain): the fuzz targets were not run"
  exit 0
fi
t0=$SECONDS
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
t1=$SECONDS
cargo +nightly fuzz build -O -a -s none
t2=$SECONDS
total=0
for target in "${targets[@]}"; do
  corpus=$(mktemp -d)
  log="$corpus.log"
  if ! cargo +nightly fuzz run -O -a -s none "$target" "$corpus" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed: the input is under fuzz/artifacts/$target/"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz $target: $runs executions in $seconds s, no crash"
  total=$((total + runs))
  rm -rf "$corpus" "$log"
done
t3=$SECONDS
echo "fuzzing: $total executions over ${#targets[@]} targets in $((t3 - t2)) s, no crash;" \
  "install $((t1 - t0)) s, build $((t2 - t1)) s, step $((t3 - t0)) s in all"
