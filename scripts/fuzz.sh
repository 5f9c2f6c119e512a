#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (libFuzzer), each for SECONDS (default 30), starting from
# the seeds in fuzz/seeds/ and the corpus a previous run left in target/fuzz-corpus/. A crash
# stops the script; libFuzzer leaves the input in fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# cargo-fuzz passes unstable flags; the machine's one (stable) toolchain accepts them with this.
export RUSTC_BOOTSTRAP=1
# Rust code: no memory sanitizer needed to find panics, overflows (debug assertions are on) and hangs.
flags=(--sanitizer none --target-dir ../target/fuzz)
targets=(responses config control_api bundle)
(cd fuzz && cargo fuzz build "${flags[@]}")
for t in "${targets[@]}"; do
  corpus=target/fuzz-corpus/$t
  mkdir -p "$corpus"
  echo "== fuzz $t for $secs s"
  (cd fuzz && cargo fuzz run "${flags[@]}" "$t" "../$corpus" "seeds/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1) |
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|INFO: Seed|==[0-9]+== ERROR|SUMMARY|thread '.*' panicked)|Done [0-9]+ runs" || true
  # grep swallowed libFuzzer's exit status: a crash leaves an artifact.
  if compgen -G "fuzz/artifacts/$t/*" >/dev/null; then
    echo "fuzz $t found a failing input:" fuzz/artifacts/"$t"/*
    exit 1
  fi
done
