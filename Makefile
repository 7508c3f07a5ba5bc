# Targets a newcomer needs; see README.md.
.PHONY: test hello bench azurite-start azurite-stop

# Every check and test, with Azurite started so no Azure test skips.
test:
	scripts/test.sh

# The main job on the embedded localhost default.
hello:
	go run ./cmd/lithops hello

bench:
	go run ./bench/core

azurite-start:
	scripts/azurite.sh start

azurite-stop:
	scripts/azurite.sh stop
