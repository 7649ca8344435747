#!/usr/bin/env bash
# Builds and runs the app on http://127.0.0.1:3000 with the embedded defaults (SQLite under ./data, in-process pubsub).
# Installs whatever build tool is missing first. Extra arguments go to the server (e.g. --addr 0.0.0.0:8080).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_build_tools
build_release
log "serving on http://127.0.0.1:3000 (Ctrl-C to stop)"
cd "$REPO_ROOT"
exec target/release/server "$@"
