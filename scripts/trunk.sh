#!/usr/bin/env bash
# The CSR-only build of frontend/ with Trunk, for hosting the client statically in front of any channel server.
# Kept out of the default test command: installing trunk takes about 18 minutes. Output: dist/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TRUNK_VERSION="0.21.14"
ensure_wasm_target
ensure_wasm_opt
ensure_wasm_bindgen
if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION\$"; then
  log "installing trunk $TRUNK_VERSION (about 18 minutes on 2 cores)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi
cd "$REPO_ROOT"
trunk build --offline --release "$@"
