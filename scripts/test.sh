#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI run it.
# Installs or builds what the tests need when it is missing (oathtool, geth
# --dev, PostgreSQL, local-kms, staticcheck), then checks formatting, vets, lints, and runs every test (with the race
# detector, cmd/countersign's end-to-end tests aside: see below), then fuzzes every fuzz target for a few seconds. With CI set, a test that cannot find its server fails instead of
# skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(./scripts/ensure-tools.sh)"
export GETH_BIN LOCAL_KMS_BIN

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './contracts/node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt: these files are not formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
"$STATICCHECK_BIN" ./...
# Every package runs under the race detector except cmd/countersign: its
# end-to-end tests (real server processes, geth, PostgreSQL, local-kms,
# Chromium) take three times as long under it, which would push the suite
# past half an hour on a fresh 2-core machine; the services they drive are
# raced in their own packages (core, http, store, daemon, …).
# RACE_ALL=1 races cmd/countersign too (about 15 minutes more).
go test -race -count=1 -timeout 25m "$@" $(go list ./... | grep -v '/cmd/countersign$')
cmdrace=""
if [ "${RACE_ALL:-}" = 1 ]; then cmdrace=-race; fi
go test $cmdrace -count=1 -timeout 25m "$@" ./cmd/countersign
# every fuzz target, briefly (FUZZTIME each, 3 s by default): the seeds
# above run as plain tests; this looks a little further on every run
./scripts/fuzz.sh
