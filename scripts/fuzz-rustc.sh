#!/usr/bin/env bash
# RUSTC_WRAPPER for scripts/fuzz.sh: adds what libFuzzer needs to steer (cargo-fuzz's flags:
# coverage counters, comparison tracing, the PC table, `cfg(fuzzing)`) to the code under test
# only, kiosk-agent and the fuzz targets. Every other crate is compiled as in the main build.
rustc=$1
shift
case " $* " in
  *" --crate-name kiosk_agent "* | *" fuzz_targets/"*)
    exec "$rustc" "$@" --cfg fuzzing -Cpasses=sancov-module \
      -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
      -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares ;;
esac
exec "$rustc" "$@"
