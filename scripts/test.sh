#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, clippy per package and target, the workspace's cargo
# tests, a short smoke of every fuzz target, a one-minute soak of the release server, the phoenix.js conformance suite
# and the Playwright browser tests. Installs whatever is missing first.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
started=$SECONDS
stage() { log "$1 (at $((SECONDS - started)) s)"; }

stage "installing missing tools"
ensure_build_tools
ensure_chromium
ensure_postgres
ensure_redis
ensure_sqlite3
ensure_end2end_packages

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "clippy, per package and target"
cargo clippy -p protocol --all-targets -- -D warnings
cargo clippy -p server --all-targets -- -D warnings
cargo clippy -p app --features ssr --all-targets -- -D warnings
cargo clippy -p app --features hydrate --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p frontend --features hydrate --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p bench --all-targets -- -D warnings

stage "cargo test --workspace"
cargo test --workspace

stage "fuzz smoke: every target of fuzz/ for a few seconds, after replaying its seeds"
scripts/fuzz.sh --smoke

build_release

stage "soak: one minute of chat, churn, faults and kill -9 against the release server"
cargo build --release -p bench
target/release/bench soak --minutes 1 --server-bin target/release/server

stage "phoenix.js conformance suite (node)"
(cd end2end && npm run --silent conformance)

stage "Playwright browser tests"
(cd end2end && npx playwright test)

stage "all tests passed"
