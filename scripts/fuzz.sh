#!/usr/bin/env bash
# Runs every fuzz target in the repository for a short, bounded time, one
# after another, and stops at the first failure. CI runs it with the
# default FUZZTIME; run it longer by hand (FUZZTIME=5m scripts/fuzz.sh).
#
#   FUZZTIME      how long each target fuzzes (-fuzztime; default 3s)
#   FUZZMINIMIZE  how long the fuzzer may minimise each new input (default
#                 1s: Go's minimiser is quadratic in the input's length and
#                 runs no new inputs meanwhile, so unbounded it can eat a
#                 short run whole)
#   FUZZ_TIMEOUT  -timeout of each target's run (default 5m)
#   FUZZ_MATCH    only run targets whose "dir.FuzzName" matches this grep -E regex
#
# Targets are found at run time (every `func FuzzXxx(f *testing.F)` in a
# _test.go file), so new ones need no registration here. Each package's
# instrumented test binary is built once and run once per target, which is
# what `go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime $FUZZTIME ./pkg` does,
# without linking the binary again for every target. A failing input is
# written to <pkg>/testdata/fuzz/<FuzzXxx>/: fix the bug and commit that
# file, so it is a seed that every `go test` replays.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-3s}"
minimize="${FUZZMINIMIZE:-1s}"
timeout="${FUZZ_TIMEOUT:-5m}"
match="${FUZZ_MATCH:-}"
root=$(pwd)
cache="$(go env GOCACHE)/fuzz" # where go test keeps each package's generated corpus

# "dir name" pairs, sorted, without vendored or generated trees.
targets=$(grep -rEo --include='*_test.go' \
  --exclude-dir=node_modules --exclude-dir=testdata --exclude-dir=.git --exclude-dir=vendor \
  '^func Fuzz[A-Za-z0-9_]*\(' . |
  sed -E 's#^\./##; s#^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#; s#^[^/ ]*:func (Fuzz[A-Za-z0-9_]*)\($#. \1#' |
  sort -u)
if [ -n "$match" ]; then
  targets=$(while read -r dir name; do
    if grep -Eq -- "$match" <<<"$dir.$name"; then echo "$dir $name"; fi
  done <<<"$targets")
fi
if [ -z "$targets" ]; then
  echo "fuzz: no fuzz targets found${match:+ matching FUZZ_MATCH=$match}" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log="$tmp/log"
start=$SECONDS
n=0
flaked=0
built=""
fail() { # pkg name command
  printf 'FAIL  %-22s %-30s %3ds\n' "$1" "$2" $((SECONDS - t0))
  echo "----- $3" >&2
  tail -n 60 "$log" >&2
  echo "-----" >&2
}
while read -r dir name; do
  pkg="./$dir"
  [ "$dir" = "." ] && pkg="."
  bin="$tmp/$(tr '/.' '__' <<<"$dir").test"
  if [ "$built" != "$dir" ]; then
    t0=$SECONDS
    if ! go test -c -fuzz=. -o "$bin" "$pkg" >"$log" 2>&1; then
      fail "$pkg" "(build)" "go test -c -fuzz=. $pkg"
      echo "fuzz: the tests of $pkg do not build" >&2
      exit 1
    fi
    importpath=$(go list -f '{{.ImportPath}}' "$pkg")
    printf 'build %-22s %-30s %3ds\n' "$pkg" "" $((SECONDS - t0))
    built=$dir
  fi
  t0=$SECONDS
  # run in the package directory, as go test does: testdata/fuzz seeds are
  # read from there and a failing input is written there.
  run() {
    (cd "$root/$dir" && "$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$fuzztime" \
      -test.fuzzminimizetime "$minimize" -test.timeout "$timeout" -test.fuzzcachedir "$cache/$importpath") >"$log" 2>&1
  }
  # Go 1.26's fuzz coordinator can report a bare "context deadline
  # exceeded" when -fuzztime ends while a worker is mid-run (go.dev/issue/
  # 75804, fixed in Go 1.27): no input fails, nothing is written. A real
  # finding always writes its input ("Failing input written to"), panics or
  # fails a check; only the bare deadline, with none of those, is retried,
  # once, and a second bare deadline is reported but not failed.
  flake() { grep -q 'context deadline exceeded' "$log" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; }
  if run || { flake && run; }; then
    printf 'ok    %-22s %-30s %3ds\n' "$pkg" "$name" $((SECONDS - t0))
    n=$((n + 1))
  elif flake; then
    printf 'flake %-22s %-30s %3ds (the coordinator deadline race twice; no input failed)\n' "$pkg" "$name" $((SECONDS - t0))
    flaked=$((flaked + 1))
  else
    fail "$pkg" "$name" "go test -run '^\$' -fuzz '^${name}\$' -fuzztime $fuzztime $pkg"
    echo "fuzz: $name in $pkg failed. A failing input is under $dir/testdata/fuzz/$name/:" >&2
    echo "      fix the bug, keep the file as a seed (go test $pkg replays it), and rerun." >&2
    exit 1
  fi
done <<<"$targets"
echo "fuzz: $n targets passed, $flaked hit only the coordinator's deadline race, FUZZTIME=$fuzztime each, in $((SECONDS - start))s"
