#!/usr/bin/env bash
# Shared helpers for the project scripts: guarded installs of every tool the build and the tests need.
# Each `ensure_*` checks first and installs only what is missing or at the wrong version.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.10"
BINARYEN_VERSION="132"
export PATH="$REPO_ROOT/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

log() { printf '\n==> %s\n' "$*"; }

# The wasm-bindgen CLI must equal the wasm-bindgen crate version in Cargo.lock exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$REPO_ROOT/Cargo.lock"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_cargo_leptos() {
  if ! cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION\$"; then
    log "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 25 minutes on 2 cores)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
}

ensure_wasm_bindgen() {
  local version
  version="$(wasm_bindgen_version)"
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $version\$"; then
    log "installing wasm-bindgen-cli $version"
    cargo install wasm-bindgen-cli --version "$version" --locked
  fi
}

# wasm-opt comes from npm's binaryen, never Debian's (version 108 silently produces a wasm that cannot hydrate).
ensure_wasm_opt() {
  if ! "$REPO_ROOT/tools/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "version $BINARYEN_VERSION"; then
    log "installing wasm-opt (npm binaryen@$BINARYEN_VERSION)"
    (cd "$REPO_ROOT/tools" && npm ci --no-audit --no-fund)
  fi
}

ensure_build_tools() {
  ensure_wasm_target
  ensure_wasm_opt
  ensure_wasm_bindgen
  ensure_cargo_leptos
}

ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    log "installing Debian's chromium"
    apt_install chromium
  fi
}

# The store tests start their own throwaway PostgreSQL from Debian's binaries (nothing runs as a service).
ensure_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    log "installing Debian's postgresql (binaries for the store tests)"
    apt_install postgresql
  fi
}

# The cluster tests start their own throwaway redis-server on a free port. Debian's package also enables a system
# service on the default port; the tests never use it.
# The browser tests write history with old timestamps straight into a stopped server's SQLite file.
ensure_sqlite3() {
  if ! command -v sqlite3 >/dev/null 2>&1; then
    log "installing Debian's sqlite3 (the browser tests seed old history with it)"
    apt_install sqlite3
  fi
}

ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing Debian's redis-server (binary for the cluster tests)"
    apt_install redis-server
  fi
}

ensure_end2end_packages() {
  if [ ! -d "$REPO_ROOT/end2end/node_modules/@playwright/test" ] || [ ! -d "$REPO_ROOT/end2end/node_modules/phoenix" ] \
    || [ "$REPO_ROOT/end2end/package-lock.json" -nt "$REPO_ROOT/end2end/node_modules/.package-lock.json" ]; then
    log "installing end2end npm packages"
    (cd "$REPO_ROOT/end2end" && npm ci --no-audit --no-fund)
  fi
}

build_release() {
  log "building the release server and WASM bundle"
  (cd "$REPO_ROOT" && cargo leptos build --release --precompress)
  # cargo-leptos writes .br at brotli's best quality but .gz at a middling level; gzip -9 saves ~13% over it. The
  # server sends these precompressed files to clients that accept them.
  local asset
  for asset in "$REPO_ROOT"/target/site/pkg/*.{wasm,js,css}; do
    gzip -9 -n -c "$asset" >"$asset.gz"
  done
}

# Fuzzing only (scripts/fuzz.sh): a nightly toolchain, which cargo-fuzz's instrumentation needs, and cargo-fuzz. The
# product itself builds on stable.
CARGO_FUZZ_VERSION="0.13.2"
ensure_fuzz_tools() {
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    log "installing the nightly toolchain (for cargo-fuzz)"
    rustup toolchain install nightly --profile minimal
  fi
  if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
  fi
}
