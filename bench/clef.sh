#!/usr/bin/env bash
# bench/clef.sh — countersign's JSON-RPC personal signature side by side
# with go-ethereum's clef, the remote signer users compare it with.
#
# It builds clef v1.16.9 (cached under the user cache dir, as
# scripts/ensure-tools.sh caches geth), sets it up headless — init with a
# master seed password, one account whose password is in clef's credential
# store, a rules.js that approves account_signData and attested — and runs
# `countersign bench --scenario clef-sign` (clef's account_signData,
# text/plain: an EIP-191 personal signature) and `--scenario
# rpc-personal-sign` (countersign's /rpc sign_message, the same EIP-191
# signature) with the same lean client and the same connections,
# alternating, RUNS times each, and prints the medians and the ratio.
#
#   bench/clef.sh                      # countersign started by the bench (--spawn)
#   COUNTERSIGN=./countersign CONNECTIONS=32 DURATION=10s RUNS=5 bench/clef.sh
#
# Needs go, jq and python3. Not run in CI: building clef takes minutes.
set -euo pipefail

CLEF_VERSION=v1.16.9
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10s}
RUNS=${RUNS:-5}
CLEF_PORT=${CLEF_PORT:-8550}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/countersign"
log() { printf 'clef.sh: %s\n' "$*" >&2; }

clef="$cache/clef-$CLEF_VERSION/clef"
if [ ! -x "$clef" ]; then
  log "building clef $CLEF_VERSION (first run only, a few minutes)"
  mkdir -p "$cache/clef-$CLEF_VERSION"
  GOBIN="$cache/clef-$CLEF_VERSION" GOFLAGS=-buildvcs=false go install "github.com/ethereum/go-ethereum/cmd/clef@$CLEF_VERSION" >&2
fi

cs=${COUNTERSIGN:-}
if [ -z "$cs" ]; then
  cs="$(mktemp -d)/countersign"
  log "building countersign"
  (cd "$(dirname "$0")/.." && go build -o "$cs" ./cmd/countersign)
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
master="clef-bench-master-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
acctpw="clef-bench-account-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
conf="$work/config" keys="$work/keystore"
mkdir -p "$conf" "$keys"
common=(--configdir "$conf" --keystore "$keys" --chainid 1337 --nousb --lightkdf --suppress-bootwarn)

# clef prompts on stdin when it is not a terminal: feed the answers.
log "clef init (master seed password)"
printf '%s\n%s\n' "$master" "$master" | "$clef" "${common[@]}" init >"$work/init.log" 2>&1
log "clef newaccount"
printf '%s\n%s\n' "$acctpw" "$acctpw" | "$clef" "${common[@]}" newaccount >"$work/newaccount.log" 2>&1
# the keystore file clef wrote is the authority on the address (its log
# also prints other hex strings)
account=0x$(jq -r .address "$keys"/* 2>/dev/null | head -1)
if [ "$account" = 0x ] || [ "$account" = 0xnull ]; then
  log "clef newaccount wrote no keystore file:"; cat "$work/newaccount.log" >&2; exit 1
fi
log "account $account; storing its password in clef's credential store"
printf '%s\n%s\n%s\n' "$acctpw" "$acctpw" "$master" | "$clef" "${common[@]}" setpw "$account" >"$work/setpw.log" 2>&1
cat >"$work/rules.js" <<'JS'
// Approve every data signature (account_signData) without a prompt: the
// same unattended signing the countersign daemon does for its operator.
function ApproveSignData(req) { return "Approve"; }
function ApproveListing(req) { return "Approve"; }
JS
sum=$(sha256sum "$work/rules.js" | cut -d' ' -f1)
log "attesting rules.js ($sum)"
printf '%s\n' "$master" | "$clef" "${common[@]}" attest "$sum" >"$work/attest.log" 2>&1

if curl -s -o /dev/null "http://127.0.0.1:$CLEF_PORT/"; then
  log "something already listens on 127.0.0.1:$CLEF_PORT (an old clef?): set CLEF_PORT"; exit 1
fi
log "starting clef on 127.0.0.1:$CLEF_PORT"
# clef reads the master password from stdin, then waits on it: a fifo this
# script holds open until it exits
mkfifo "$work/clef.stdin"
"$clef" "${common[@]}" --rules "$work/rules.js" \
  --http --http.addr 127.0.0.1 --http.port "$CLEF_PORT" <"$work/clef.stdin" >"$work/clef.log" 2>&1 &
pids+=($!)
exec 3>"$work/clef.stdin"
printf '%s\n' "$master" >&3
for _ in $(seq 1 100); do
  if curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
      --data '{"jsonrpc":"2.0","id":1,"method":"account_version","params":[]}' "http://127.0.0.1:$CLEF_PORT/"; then break; fi
  sleep 0.2
done
check=$(curl -s -X POST -H 'Content-Type: application/json' \
  --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"account_signData\",\"params\":[\"text/plain\",\"$account\",\"0x68656c6c6f\"]}" "http://127.0.0.1:$CLEF_PORT/")
if ! jq -e '.result' >/dev/null <<<"$check"; then
  log "clef does not sign unattended: $check"
  cat "$work/newaccount.log" "$work/setpw.log" "$work/clef.log" >&2; exit 1
fi

# countersign, started by the bench on its own data dir (signing not rate limited)
csdata="$work/countersign"
mkdir -p "$csdata" && chmod 700 "$csdata"
SIGN_RATE=1000000000 SIGN_BURST=1000000000 EVENTS_SOCKET=off LOG_LEVEL=${LOG_LEVEL:-info} \
  "$cs" serve --addr 127.0.0.1:18571 --data-dir "$csdata" >"$work/countersign.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do curl -sf -o /dev/null http://127.0.0.1:18571/readyz && break; sleep 0.1; done

out="$work/results.jsonl"
for i in $(seq 1 "$RUNS"); do
  for s in clef-sign rpc-personal-sign; do
    log "run $i: $s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    "$cs" bench --url http://127.0.0.1:18571 --data-dir "$csdata" --scenario "$s" --connections "$CONNECTIONS" \
      --duration "$DURATION" --in-process-time 1s --clef-url "http://127.0.0.1:$CLEF_PORT/" --clef-account "$account" --json --quiet |
      jq -c --arg run "$i" '.results[0] + {run: ($run|tonumber), load: .machine.load_average}' >>"$out"
  done
done

python3 - "$out" "$CONNECTIONS" "$DURATION" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(s, k): return statistics.median(r[k] for r in rows if r["scenario"] == s)
clef, cs = med("clef-sign", "requests_per_second"), med("rpc-personal-sign", "requests_per_second")
print(f"{sys.argv[2]} connections, {sys.argv[3]} per run, {len(rows)//2} runs of each, alternating (medians):")
for s in ("clef-sign", "rpc-personal-sign"):
    print(f"  {s:18} {med(s, 'requests_per_second'):10.1f} requests/s  p50 {med(s, 'p50_ms'):.2f} ms  p99 {med(s, 'p99_ms'):.2f} ms  errors {sum(r['errors'] for r in rows if r['scenario']==s)}")
print(f"  countersign / clef = {cs/clef:.0f}x" if clef > 0 else "  clef signed nothing")
print("  load averages during the runs: " + ", ".join(sorted({r['load'] for r in rows})))
PY
