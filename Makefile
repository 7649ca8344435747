# The two commands of README.md, plus the optional static (Trunk) build and the long fuzzing run. Everything is in
# scripts/.
.PHONY: run test trunk fuzz

run:
	scripts/run.sh

test:
	scripts/test.sh

trunk:
	scripts/trunk.sh

# Every fuzz target for FUZZ_SECONDS (default 300) each; FUZZ_RUNS=N for a number of executions instead.
fuzz:
	scripts/fuzz.sh
