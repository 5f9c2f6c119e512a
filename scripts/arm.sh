#!/usr/bin/env bash
# Cross-builds kiosk-agent for Raspberry Pi-class boards (aarch64 and armv7) without Docker,
# and runs the test suite for aarch64 under qemu-user. Uses Debian's rustc-web for the ARM
# targets (rustup cannot fetch other targets here) with the matching target std unpacked from
# Debian's libstd-rust-web-dev packages; host builds keep using rustup's toolchain.
#
#   bash scripts/arm.sh build    # release binaries for both targets, stripped sizes printed
#   bash scripts/arm.sh package  # .deb for arm64 and armhf (cargo-deb), after build
#   bash scripts/arm.sh test     # the aarch64 test suite under qemu-aarch64
#   bash scripts/arm.sh          # all three
#   bash scripts/arm.sh setup    # only the toolchain and packages (apt), e.g. before building in
#                                # the background while something else uses apt
#
# ARM_QUICK=1 (CI) builds without LTO: the release binaries, the packages and the test suite
# then share one build of every dependency per target instead of an LTO link per binary.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
# With ARM_QUICK (CI, bounded for its 45 minutes): the protocol's bytes and signatures and the
# queue's files; all six suites otherwise.
if [ "${ARM_QUICK:-0}" = 1 ]; then
  AARCH64_TESTS=(--test vectors --test queue)
else
  AARCH64_TESTS=(--test vectors --test queue --test vision --test display --test spi --test sandbox)
fi
deb_arch() { case "$1" in aarch64-*) echo arm64 ;; armv7-*) echo armhf ;; esac; }

setup() {
  apt_install rustc-web gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross \
    qemu-user-static binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf
  local ver
  ver=$(dpkg-query -W -f='${Version}' rustc-web)
  for t in "${TARGETS[@]}"; do
    [ -d "/usr/lib/rustlib/$t" ] && continue
    local arch url tmp
    arch=$(deb_arch "$t")
    # The target std of exactly rustc-web's version, from the same pool as rustc-web itself
    # (adding armhf as a dpkg architecture breaks apt here, so the .deb is fetched directly).
    url=$(apt-get download --print-uris "rustc-web=$ver" | head -1 | cut -d"'" -f2)
    url="${url%/*}/libstd-rust-web-dev_$(printf %s "$ver" | sed 's/+/%2b/g; s/~/%7e/g')_${arch}.deb"
    tmp=$(mktemp -d)
    /usr/lib/apt/apt-helper download-file "$url" "$tmp/std.deb" >/dev/null
    dpkg-deb -x "$tmp/std.deb" "$tmp/x"
    cp -r "$tmp/x/usr/lib/rustlib/$t" /usr/lib/rustlib/
    rm -rf "$tmp"
  done
}

cross_env() {
  if [ "${ARM_QUICK:-0}" = 1 ]; then export CARGO_PROFILE_RELEASE_LTO=off; fi
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR=target/cross
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
  export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm-static -L /usr/arm-linux-gnueabihf"
  export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
}

build() {
  for t in "${TARGETS[@]}"; do
    echo "== release build for $t"
    local t0=$SECONDS
    # The packaged binary: no sandbox, no fault injection, no test doubles. CI (ARM_QUICK) builds
    # armv7 at opt-level 1: it proves the target compiles and links, nothing runs it, and it is
    # minutes quicker; its size is then not the release's.
    local opt=""
    if [ "${ARM_QUICK:-0}" = 1 ] && [ "${t%%-*}" = armv7 ]; then opt=1; fi
    # The dependencies' own opt-level (Cargo.toml) is lowered with the crate's.
    local lower=()
    if [ -n "$opt" ]; then lower=(--config "profile.release.package.\"*\".opt-level=$opt"); fi
    CARGO_PROFILE_RELEASE_OPT_LEVEL="${opt:-${CARGO_PROFILE_RELEASE_OPT_LEVEL:-3}}" \
      cargo build "${lower[@]}" --release --locked --no-default-features --target "$t" --bin kiosk-agent
    echo "metric build_secs_${t%%-*} $((SECONDS - t0)) s"
    local bin="target/cross/$t/release/kiosk-agent" strip
    case "$t" in aarch64-*) strip=aarch64-linux-gnu-strip ;; *) strip=arm-linux-gnueabihf-strip ;; esac
    $strip -o "$bin.stripped" "$bin"
    # ARM_QUICK builds without LTO (some 0.3 MB larger than the thin-LTO release): said beside it.
    local how="${opt:+opt-level $opt}"
    if [ "${ARM_QUICK:-0}" = 1 ]; then how="${how:+$how, }no LTO"; fi
    echo "metric binary_size_${t%%-*} $(( $(stat -c %s "$bin.stripped") / 1024 )) KB${how:+ ($how)}"
  done
}

test_aarch64() {
  echo "== aarch64 tests under qemu-user"
  # The tests start agent and sandbox processes: those aarch64 children run through
  # binfmt_misc and qemu-user, with the cross loader found through QEMU_LD_PREFIX.
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  apt_install binfmt-support
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
  if ! [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    echo "binfmt_misc has no qemu-aarch64 handler; cannot run aarch64 child processes" >&2
    exit 1
  fi
  export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
  # Bounded for CI: what depends on the architecture (the protocol bytes, the queue's files,
  # pixels, SPI bytes, the sandbox's checks) runs here; the process-heavy suites (SIGKILL loop,
  # API sessions, interop, injected faults: minutes each when emulated) run on the host.
  # Release, so the dependencies and the library built for the binary above are reused.
  # The library's own unit tests (pure logic, the same 64-bit little-endian machine as the host)
  # are left to the host: their build was a third compile of the crate for this target.
  cargo test --release --locked --target aarch64-unknown-linux-gnu "${AARCH64_TESTS[@]}"
}

# The suites test_aarch64 runs, built only (CI builds them in the background, runs them later).
build_tests_aarch64() {
  echo "== aarch64 test build"
  cargo test --release --locked --target aarch64-unknown-linux-gnu "${AARCH64_TESTS[@]}" --no-run
}

package() {
  install_cargo_deb
  for t in "${TARGETS[@]}"; do
    echo "== Debian package for $t"
    cargo deb --no-build --target "$t" --output target/cross/debian/
  done
  for d in target/cross/debian/*.deb; do
    dpkg-deb --info "$d" | grep -E "Package|Architecture|Version|Depends"
    dpkg-deb --contents "$d" | awk '{print $6}'
    echo "metric deb_size_$(dpkg-deb -f "$d" Architecture) $(( $(stat -c %s "$d") / 1024 )) KB"
  done
}

setup
cross_env
for step in "${@:-all}"; do
  case "$step" in
    setup) ;;
    build) build ;;
    test-build) build_tests_aarch64 ;;
    test) test_aarch64 ;;
    package) package ;;
    all) build; package; test_aarch64 ;;
    *) echo "usage: $0 [setup|build|package|test-build|test|all]..." >&2; exit 2 ;;
  esac
done
