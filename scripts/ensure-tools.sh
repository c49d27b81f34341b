#!/usr/bin/env bash
# Installs or builds what the test suite needs when it is missing, and
# prints the environment for it (GETH_BIN=...). Tool builds are cached under
# the user cache directory, so only the first run on a machine pays for them.
set -euo pipefail

GETH_VERSION=v1.16.9
cache="${XDG_CACHE_HOME:-$HOME/.cache}/countersign"
mkdir -p "$cache"

log() { printf 'ensure-tools: %s\n' "$*" >&2; }

# oathtool: an independent TOTP implementation the tests compare against.
if ! command -v oathtool >/dev/null 2>&1; then
  log "installing oathtool (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq oathtool >&2
fi

# node and python3 run the examples; npm installs their packages (ethers,
# the MCP SDK) into examples/node_modules, again when package.json changes.
for tool in node python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "installing $tool (Debian package)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >&2
    case $tool in
      node) DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >&2 ;;
      python3) DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 >&2 ;;
    esac
  fi
done
# Chromium: the browser of the web UI tests (Debian's package; chromedp
# drives it headless).
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium (Debian package, first run only)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2
fi
# PostgreSQL: the server of the PostgreSQL store's tests (store/postgres,
# cmd/countersign's Postgres test), which start it themselves as the
# postgres user (store/postgres/pgtest); under CI they fail without it.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  log "installing postgresql (Debian package, first run only)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi

stamp=examples/node_modules/.countersign-stamp
if [ ! -f "$stamp" ] || [ examples/package.json -nt "$stamp" ]; then
  log "installing the examples' npm packages"
  (cd examples && npm install --no-audit --no-fund --silent >&2)
  touch "$stamp"
fi

# geth --dev: the real node of the end-to-end test over JSON-RPC.
geth="$cache/geth-$GETH_VERSION/geth"
if [ ! -x "$geth" ]; then
  log "building geth $GETH_VERSION (first run only, a few minutes)"
  mkdir -p "$cache/geth-$GETH_VERSION"
  GOBIN="$cache/geth-$GETH_VERSION" GOFLAGS=-buildvcs=false go install "github.com/ethereum/go-ethereum/cmd/geth@$GETH_VERSION" >&2
fi
# local-kms: a real implementation of the AWS KMS protocol, the KMS of the
# KMS key-encryption key and KMS signer tests (cloud/awskms/kmstest).
LOCAL_KMS_VERSION=v0.0.0-20260228092603-2a5e92d09ab6
local_kms="$cache/local-kms-$LOCAL_KMS_VERSION/local-kms"
if [ ! -x "$local_kms" ]; then
  log "building local-kms $LOCAL_KMS_VERSION (first run only)"
  mkdir -p "$cache/local-kms-$LOCAL_KMS_VERSION"
  GOBIN="$cache/local-kms-$LOCAL_KMS_VERSION" GOFLAGS=-buildvcs=false go install "github.com/nsmithuk/local-kms@$LOCAL_KMS_VERSION" >&2
fi
# staticcheck: the linter the test command runs.
STATICCHECK_VERSION=v0.8.2
staticcheck="$cache/staticcheck-$STATICCHECK_VERSION/staticcheck"
if [ ! -x "$staticcheck" ]; then
  log "building staticcheck $STATICCHECK_VERSION (first run only)"
  GOBIN="$cache/staticcheck-$STATICCHECK_VERSION" GOFLAGS=-buildvcs=false go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" >&2
fi
echo "GETH_BIN=$geth"
echo "LOCAL_KMS_BIN=$local_kms"
echo "STATICCHECK_BIN=$staticcheck"
