#!/usr/bin/env bash
# Runs the libFuzzer targets in fuzz/, each for SECONDS (default 30), starting from the seeds in
# fuzz/seeds/ and the corpus a previous run left in target/fuzz-corpus/. A crash stops the script;
# libFuzzer leaves the input in fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz.sh [SECONDS]
#
# Built with plain cargo rather than cargo-fuzz: cargo-fuzz instruments every crate through
# RUSTFLAGS, a second full build of the dependencies. Here only kiosk-agent and the targets are
# instrumented (scripts/fuzz-rustc.sh), and the dependencies come from the main release build in
# target/ (nothing here may differ from it: an environment variable a build script watches, such
# as RUSTC_BOOTSTRAP, would rebuild them all, twice).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
export RUSTC_WRAPPER="$PWD/scripts/fuzz-rustc.sh"
# As CI's release builds (scripts/test.sh): no LTO, 16 codegen units, for both workspaces alike.
export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
# The main lock's versions, plus what only the fuzz workspace needs (libfuzzer-sys), so that the
# dependencies resolve to the very builds the main workspace made.
cp Cargo.lock fuzz/Cargo.lock
targets=(responses config control_api bundle)
(cd fuzz && cargo build --release --target-dir ../target --bins)
for t in "${targets[@]}"; do
  corpus=target/fuzz-corpus/$t
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  echo "== fuzz $t for $secs s"
  target/release/"$t" "$corpus" "fuzz/seeds/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|INFO: Seed|==[0-9]+== ERROR|SUMMARY|thread '.*' panicked)|Done [0-9]+ runs" || true
  # grep swallowed libFuzzer's exit status: a crash leaves an artifact.
  if compgen -G "fuzz/artifacts/$t/*" >/dev/null; then
    echo "fuzz $t found a failing input:" fuzz/artifacts/"$t"/*
    exit 1
  fi
done
