#!/usr/bin/env bash
# test.sh — runs every check and test of lithops-go: gofmt, go vet (also
# for darwin and windows), go test ./... with Azurite running so that no
# Azure test skips, and the race detector on the packages with concurrency
# of their own.
#
# Azurite (pinned in package.json) is installed with npm and started on
# 127.0.0.1 when npm is available; the script stops it again if it started it.
# Without Node/npm the Azure tests skip with a one-line reason. Some tests
# (e2e TestKeylessAzure: HTTPS and --oauth basic) start an Azurite of their
# own from node_modules on free ports and stop it; they need the npm ci above.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=0
cleanup() {
	if [[ $started == 1 ]]; then scripts/azurite.sh stop || true; fi
}
trap cleanup EXIT

if command -v npm >/dev/null 2>&1; then
	if ! scripts/azurite.sh status >/dev/null 2>&1; then
		scripts/azurite.sh start
		started=1
	fi
else
	echo "test.sh: npm not found: Azure tests will skip" >&2
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [[ -n $unformatted ]]; then
	echo "gofmt needed:" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "== go vet"
go vet ./...
# Users build on macOS and Windows too: every package, tests included,
# must at least compile there.
for goos in darwin windows; do
	echo "== go vet (GOOS=$goos)"
	GOOS=$goos go vet ./...
done
echo "== go test"
go test -count=1 -timeout 20m "$@" ./...
# The race detector on every package with concurrency of its own: the
# executor (root), the compute backends, the process pool, the runtime host,
# the worker and the storage drivers. Tests calibrated on memory limits or
# timeouts skip under -race (its runtime distorts both); they ran above.
echo "== go test -race"
go test -race -count=1 -timeout 20m "$@" . ./compute/... ./internal/procpool ./internal/host ./internal/worker ./storage/...
