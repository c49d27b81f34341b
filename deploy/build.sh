#!/usr/bin/env bash
# Release build: a stripped, reproducible countersign binary with its
# version stamped (what `countersign version` and GET /about print).
#
#   deploy/build.sh [OUT]        default OUT: ./bin/countersign
#   VERSION=v1.2.3 deploy/build.sh   stamp this version instead of git's
#
# -trimpath drops local paths from the binary; -s -w drop the symbol table
# and DWARF debug data (panics still print function names and lines).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bin/countersign}"
version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || true)}"
ldflags="-s -w"
if [ -n "$version" ]; then
  ldflags="$ldflags -X main.version=$version"
fi
mkdir -p "$(dirname "$out")"
go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/countersign
size=$(stat -c %s "$out" 2>/dev/null || stat -f %z "$out")
echo "built $out ($("$out" version), $(awk -v b="$size" 'BEGIN { printf "%.1f MiB", b / 1048576 }'))" >&2
