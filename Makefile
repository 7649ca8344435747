# The two commands of README.md, plus the optional static (Trunk) build. Everything is in scripts/.
.PHONY: run test trunk

run:
	scripts/run.sh

test:
	scripts/test.sh

trunk:
	scripts/trunk.sh
