#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI run it.
# Installs or builds what the tests need when it is missing (oathtool, geth
# --dev, PostgreSQL, local-kms, staticcheck), then checks formatting, vets, lints, and runs every test with the race
# detector, then fuzzes every fuzz target for a few seconds. With CI set, a test that cannot find its server fails instead of
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
go test -race -count=1 -timeout 25m "$@" ./...
# every fuzz target, briefly (FUZZTIME each, 3 s by default): the seeds
# above run as plain tests; this looks a little further on every run
./scripts/fuzz.sh
