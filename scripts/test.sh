#!/usr/bin/env bash
# Runs every test of kiosk-agent. On a fresh Debian machine with the Rust toolchain it first
# installs what the tests need: the official Smile ID SDKs (Python smile-id-core from PyPI,
# Node smile-identity-core from npm) used as interop peers, and Debian packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh

# Each section prints how long the one before it took (CI has a time budget).
section_start=$SECONDS
section_name=""
section() {
  [ -n "$section_name" ] && echo "metric ci_section_secs $((SECONDS - section_start)) s ($section_name)"
  section_name=$1
  section_start=$SECONDS
  echo "== $1"
}
arm_pid=""
trap '[ -n "$arm_pid" ] && { kill -- "-$arm_pid" 2>/dev/null || true; }; section done' EXIT

command -v python3 >/dev/null || apt_install python3 python3-venv
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
# Clock jumps in the tests (tests/cli.rs, tests/model.rs) move the agent's wall clock with libfaketime.
apt_install faketime curl
# The text stack's references: HarfBuzz's hb-shape and hb-view (tests/shaping.rs), Tesseract with
# the scripts' language data (tests/legibility.rs).
apt_install libharfbuzz-bin tesseract-ocr tesseract-ocr-yor tesseract-ocr-amh tesseract-ocr-ara \
  tesseract-ocr-swa tesseract-ocr-fra

section "Python interop peer (smile-id-core)"
venv=target/interop-venv
if ! [ -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
# OpenCV for the vision bench's baseline (benches/opencv_baseline.py), in the same venv.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r benches/requirements.txt
export PYTHON="$PWD/$venv/bin/python"

section "Node interop peer (smile-identity-core)"
(cd tests/interop && CI=true npm ci --no-audit --no-fund --loglevel=error)

# Every build below (the test suite, crash test, VM and field tests, the package, benchmarks, the
# fuzz targets' dependencies, the ARM builds) is the release profile: one build of every
# dependency per target, shared, where a debug-profile suite was a second one (some 4 minutes).
# No LTO, whose link per binary took minutes across CI, and 16 codegen units: the same code;
# `cargo build --release` keeps thin LTO.
export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16

section "ARM toolchain (the builds run in the background, at the lowest priority)"
# The ARM builds, packages and the aarch64 tests' build take only the CPU the suite leaves idle
# (tests waiting on sockets and timers, single-threaded fuzzing): nice 19 gives way to
# everything else, so the timed parts are not slowed. Their apt installs and cargo-deb come
# first, in the foreground. The benchmarks wait for them, so nothing else runs while figures
# are taken; the aarch64 tests run last, in the foreground (their timers need the CPU).
bash scripts/arm.sh setup
install_cargo_deb
mkdir -p target
# Its own process group (job control on for the launch), so that a failure elsewhere stops its
# cargo too; not its own session (setsid), which with the kernel's autogroups would give it an
# equal share of the CPU whatever its nice value.
set -m
ARM_QUICK=1 nice -n 19 bash scripts/arm.sh build package test-build < /dev/null > target/arm.log 2>&1 &
arm_pid=$!
set +m

section "format and lints"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)
cargo clippy --locked --all-targets -- -D warnings
# The packaged binary: without the sandbox, its fault injection and the test doubles.
cargo clippy --locked --no-default-features --lib --bins -- -D warnings

section "tests"
cargo test --release --locked

section "nothing lost: the model-based test's counts (60 random steps beside the running service)"
# Already run, silently, with the suite above; again here for its metric lines.
cargo test --release --locked --test model -- --nocapture 2>&1 | grep -E "^metric|test result"

section "legibility: Tesseract reads our screens' text against HarfBuzz's hb-view, per language"
cargo test --release --locked --test legibility -- --ignored --nocapture

section "crash test: SIGKILL while enqueueing and uploading (release build)"
KILL_LOOP_RUNS="${KILL_LOOP_RUNS:-100}" cargo test --release --locked --test crash -- --nocapture

section "fleet: five agents scraped by Prometheus, the alert rules (promtool), the exposition's lint"
# Without its recommends (node-exporter and friends, services of their own).
dpkg -s prometheus >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
cargo test --release --locked --test fleet -- --ignored --nocapture

section "fuzzing: each libFuzzer target for a bounded time"
bash scripts/fuzz.sh "${FUZZ_SECS:-10}"

section "device tests in a VM (Debian kernel under qemu): V4L2 on vivid, framebuffer on bochs, a button on gpio-sim; the deployed kiosk (amd64 .deb, systemd as PID 1)"
bash scripts/vm.sh kit
bash scripts/vm.sh rootfs
install_cargo_deb
# The package's binary is built without the sandbox; the tests' own build (with it) follows.
cargo build --release --locked --no-default-features --bin kiosk-agent
cargo deb --locked --no-build --output target/debian/
cargo build --release --locked --bin kiosk-agent --example vivid_feed --example uinput_feed
cargo test --release --locked --test vm -- --ignored --nocapture

section "field conditions in the VM (network namespaces, veth, tc netem): the soak"
# Bounded for CI's 45 minutes: 50 jobs (300 in a full soak: SOAK_JOBS=300 SOAK_LIMIT_SECS=780).
SOAK_JOBS="${SOAK_JOBS:-50}" SOAK_LIMIT_SECS="${SOAK_LIMIT_SECS:-420}" \
  cargo test --release --locked --test field -- --ignored --nocapture

section "ARM: aarch64 and armv7 release builds, Debian packages, aarch64 test build (the rest of the background run)"
arm_rc=0
wait "$arm_pid" || arm_rc=$?
arm_pid=""
cat target/arm.log
[ "$arm_rc" = 0 ] || { echo "the ARM builds or tests failed (exit $arm_rc)" >&2; exit "$arm_rc"; }

section "benchmarks, the link bench among them (figures as 'metric <name> <value> <unit>')"
cargo bench --locked --bench field
# 3,000 enqueue/erase cycles show the space amplification's trend; 10,000 add a minute of CI.
CYCLES="${CYCLES:-3000}" cargo bench --locked --bench queue --bench vision --bench display --bench api --bench metrics

section "systemd unit: exposure by systemd-analyze (goal <= 2.0)"
apt_install systemd
exposure=$(systemd-analyze security --offline=true systemd/kiosk-agent.service 2>/dev/null | sed -n 's/.*exposure level for kiosk-agent.service: \([0-9.]*\).*/\1/p')
echo "metric unit_exposure ${exposure:-unknown} score"
awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }'

section "ARM: the aarch64 tests under qemu-user"
ARM_QUICK=1 bash scripts/arm.sh test
