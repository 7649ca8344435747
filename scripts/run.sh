#!/usr/bin/env bash
# Builds and runs the app on http://127.0.0.1:3000 with the embedded defaults (SQLite under ./data, in-process pubsub).
# Installs whatever build tool is missing first. Extra arguments go to the server (e.g. --addr 0.0.0.0:8080).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_build_tools
build_release
log "serving on http://127.0.0.1:3000 (Ctrl-C to stop)"
cd "$REPO_ROOT"
# glibc keeps freed memory in its arenas; these return large blocks to the system (BENCHMARKS.md, "Soak (issue 16)").
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
exec target/release/server "$@"
