#!/usr/bin/env python3
"""A countersign agent in plain Python (standard library only).

It asks to pay someone, waits for the human to approve the request in
countersign, then executes it and waits for it to be mined.

    COUNTERSIGN_URL=http://127.0.0.1:8555 COUNTERSIGN_API_KEY=csk_... \
        python3 python_agent.py --to 0x... --amount 1000000000000000 --memo "why"

It prints one JSON object with the outcome and exits 0 when the payment is
confirmed, 2 when the human rejected it or it expired, 1 on errors.
"""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

URL = os.environ.get("COUNTERSIGN_URL", "http://127.0.0.1:8555").rstrip("/")
KEY = os.environ.get("COUNTERSIGN_API_KEY", "")


class CountersignError(Exception):
    def __init__(self, status, code, detail):
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


def call(method, path, body=None):
    """One API call; countersign errors become CountersignError."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("X-API-KEY", KEY)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=90) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        err = json.load(e).get("error", {})
        raise CountersignError(e.code, err.get("code"), err.get("detail")) from None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--to", required=True, help="recipient address")
    p.add_argument("--amount", required=True, help="wei, as an integer string")
    p.add_argument("--memo", default="payment from the python example agent")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the human")
    args = p.parse_args()
    if not KEY:
        sys.exit("set COUNTERSIGN_API_KEY to the agent's API key")

    # 1. Ask: a pending request the human sees with your memo.
    tx = call("POST", "/api/prepare_transaction",
              {"type": "native", "to_address": args.to, "amount": args.amount, "memo": args.memo})
    tid = tx["transaction_id"]
    print(f"prepared {tid}: waiting for a human to approve", file=sys.stderr)

    # 2. Wait for the human (long poll: the server answers as soon as they decide).
    deadline = time.time() + args.timeout
    status = tx["status"]
    while status == "pending" and time.time() < deadline:
        status = call("GET", f"/api/transaction_status?transaction_id={tid}&wait=30s")["status"]
    if status != "authorized":
        st = call("GET", f"/api/transaction_status?transaction_id={tid}")
        print(json.dumps({"transaction_id": tid, "status": st["status"], "reason": st.get("reason", "")}))
        return 2

    # 3. Execute (safe to repeat: it never sends twice) and wait for the chain.
    ex = call("POST", "/api/execute_transaction", {"transaction_id": tid})
    status = ex["status"]
    while status == "submitted" and time.time() < deadline:
        status = call("GET", f"/api/transaction_status?transaction_id={tid}&wait=30s")["status"]
    print(json.dumps({"transaction_id": tid, "status": status, "tx_hash": ex["tx_hash"]}))
    return 0 if status == "confirmed" else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CountersignError as e:
        print(json.dumps({"error": {"code": e.code, "detail": e.detail}}))
        sys.exit(1)
