# Shared by the scripts: install Debian packages only when missing (apt-get update first).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# cargo-deb, from crates.io, once per machine.
install_cargo_deb() {
  command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
}
