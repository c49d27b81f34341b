#!/usr/bin/env bash
# Development boot script: the server, bound to loopback, with
# the wallet daemon's keystore under ./data/keystore.
set -euo pipefail
cd "$(dirname "$0")/.."
export WALLET_BIND="${WALLET_BIND:-127.0.0.1}"
export WALLET_PORT="${WALLET_PORT:-8555}"
export KEYSTORE_DIR="${KEYSTORE_DIR:-./data/keystore}"
mkdir -p "$KEYSTORE_DIR" data
chmod 700 data "$KEYSTORE_DIR"
exec go run ./cmd/countersign serve "$@"
