#!/usr/bin/env bash
# Recompiles the Solidity sources in src/ into artifacts/*.json (ABI and
# creation bytecode) with a pinned solc-js. The artifacts are committed, so
# neither the server nor the tests need Node; run this only after editing src/.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --silent >/dev/null
mkdir -p artifacts
node compile.js
