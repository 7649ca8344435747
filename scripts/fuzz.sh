#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer), the targets of fuzz/ (fuzz/README.md says what each checks).
#
#   scripts/fuzz.sh                      every target for FUZZ_SECONDS each (default 300), one after the other
#   FUZZ_RUNS=10000000 scripts/fuzz.sh   every target for that many executions instead
#   scripts/fuzz.sh --smoke              every target for FUZZ_SMOKE_SECONDS each (default 8): the stage of
#                                        scripts/test.sh, which also replays every committed seed
#   scripts/fuzz.sh [--smoke] TARGET...  only these targets
#
# Each run starts from the committed seeds (fuzz/seeds/<target>) and grows the working corpus (fuzz/corpus/<target>,
# gitignored, kept between runs). A crash or a broken invariant stops the script with libFuzzer's report; the input
# that caused it is in fuzz/artifacts/<target>/, and `cargo +nightly fuzz fmt TARGET FILE` prints it decoded.
#
# Built once for all targets, without a sanitizer and with debug assertions: every crate fuzzed forbids unsafe code,
# so AddressSanitizer could find nothing (and halves the speed), while debug assertions turn integer overflow into a
# crash the fuzzer reports.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT/fuzz"
export CARGO_INCREMENTAL=0
BUILD_FLAGS=(--sanitizer none --debug-assertions)

seconds="${FUZZ_SECONDS:-300}"
runs="${FUZZ_RUNS:-}"
if [ "${1:-}" = "--smoke" ]; then
  shift
  seconds="${FUZZ_SMOKE_SECONDS:-8}"
  runs=""
fi

ensure_fuzz_tools
targets=("$@")
if [ "${#targets[@]}" = 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

started=$SECONDS
log "building ${#targets[@]} fuzz targets"
cargo +nightly fuzz build "${BUILD_FLAGS[@]}"
log "built in $((SECONDS - started)) s"

output="$(mktemp)"
trap 'rm -f "$output"' EXIT
if [ -n "$runs" ]; then limit=(-runs="$runs"); else limit=(-max_total_time="$seconds"); fi
for target in "${targets[@]}"; do
  log "fuzzing $target (${limit[*]})"
  mkdir -p "corpus/$target"
  # -timeout: an input that takes over 10 s is a hang worth reporting.
  if ! cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    "${limit[@]}" -timeout=10 -print_final_stats=1 >"$output" 2>&1; then
    tail -n 60 "$output"
    log "fuzz target $target failed; the input is in fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E '^(Done |stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$output" || true
  grep -E '^#[0-9]+ +DONE ' "$output" | cut -c1-100 || true
done
log "all ${#targets[@]} fuzz targets passed in $((SECONDS - started)) s"
