#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `vakt flows` through the built binary against a stand-in for vaktd's flows
# socket (fake_vaktd.py) serving the golden lines of events.jsonl, which
# tests/unit/test_flowsrv.c proves are what the real server writes (that test
# also runs the real binary against the real server). Checks: the text
# format (events.txt), -o json passing lines through unchanged, lines split
# across reads, -n, SIGINT, and every error path (exit 2, a clear message).
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
VAKT=$BUILD/vakt
HERE=tests/flows
TMP=$(mktemp -d /tmp/vkt-flows-cli.XXXXXX)
SRV_PID=
cleanup() {
	if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

[ -x "$VAKT" ] || { echo "FAIL: $VAKT not built (make $VAKT)"; exit 1; }

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# serve ARGS... : starts fake_vaktd.py on $TMP/flows.sock, waits for the socket.
SOCK=$TMP/flows.sock
serve() {
	rm -f "$SOCK"
	python3 "$HERE/fake_vaktd.py" --socket "$SOCK" "$@" &
	SRV_PID=$!
	for _ in $(seq 200); do [ -S "$SOCK" ] && return 0; sleep 0.01; done
	echo "FAIL: fake vaktd did not start"; exit 1
}
reap() {
	if [ -n "$SRV_PID" ]; then wait "$SRV_PID" 2>/dev/null || true; SRV_PID=; fi
}

RC=0
# run WANT_RC ARGS... : runs vakt flows (10 s at most), stdout/stderr in $TMP/out, $TMP/err.
run() {
	local want=$1; shift
	set +e
	timeout 10 "$VAKT" flows "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	set -e
	reap
	if [ "$RC" -eq "$want" ]; then ok "exit $want: vakt flows $*"; else
		bad "exit $RC (want $want): vakt flows $*"
		sed 's/^/     out| /' "$TMP/out"; sed 's/^/     err| /' "$TMP/err"
	fi
}
same() { # same FILE EXPECTED WHAT
	if cmp -s "$1" "$2"; then ok "$3"; else bad "$3"; diff -u "$2" "$1" | sed 's/^/     | /'; fi
}
has() { # has out|err TEXT
	if grep -qF -- "$2" "$TMP/$1"; then ok "$1 has: $2"; else
		bad "$1 lacks: $2"; sed "s/^/     $1| /" "$TMP/$1"; fi
}

# Text: one readable line per drop, the lost count, then vaktd going away is an error.
serve --file "$HERE/events.jsonl"
run 2 --socket "$SOCK"
same "$TMP/out" "$HERE/events.txt" "text output matches events.txt"
has err "vaktd closed the connection"

# JSON: the lines as vaktd sent them, byte for byte, each one valid JSON.
serve --file "$HERE/events.jsonl"
run 2 -o json --socket "$SOCK"
same "$TMP/out" "$HERE/events.jsonl" "-o json passes the lines through unchanged"
if python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$TMP/out"; then
	ok "-o json: every line parses"; else bad "-o json: a line does not parse"; fi

# Lines split anywhere across reads (7 bytes at a time).
serve --file "$HERE/events.jsonl" --chunk 7
run 2 --socket "$SOCK"
same "$TMP/out" "$HERE/events.txt" "lines split across reads are reassembled"

# -n COUNT: exits 0 after COUNT drop events while vaktd keeps the stream open.
serve --file "$HERE/events.jsonl" --hold 20
run 0 --socket "$SOCK" -n 2
head -n 2 "$HERE/events.txt" >"$TMP/want"
same "$TMP/out" "$TMP/want" "-n 2 prints the first two events"

# Interrupted while following: exit 0, what was printed stays printed.
serve --file "$HERE/events.jsonl" --hold 20
set +e
"$VAKT" flows --socket "$SOCK" >"$TMP/out" 2>"$TMP/err" &
CLI=$!
for _ in $(seq 500); do [ "$(wc -l <"$TMP/out")" -ge 6 ] && break; sleep 0.01; done
kill -INT "$CLI"
wait "$CLI"
RC=$?
set -e
reap
if [ "$RC" -eq 0 ]; then ok "SIGINT: exit 0"; else bad "SIGINT: exit $RC (want 0)"; fi
same "$TMP/out" "$HERE/events.txt" "SIGINT: everything received was printed"

# A line that is not JSON is reported and skipped; the stream goes on.
{ echo 'not json at all'; head -n 1 "$HERE/events.jsonl"; } >"$TMP/mixed"
serve --file "$TMP/mixed"
run 2 --socket "$SOCK"
has err "unreadable line from vaktd"
head -n 1 "$HERE/events.txt" >"$TMP/want"
same "$TMP/out" "$TMP/want" "the event after a bad line is printed"

# vaktd turning the subscriber away (too many subscribers).
echo '{"type":"error","msg":"too many vakt flows subscribers"}' >"$TMP/err_line"
serve --file "$TMP/err_line" --hold 20
run 2 --socket "$SOCK"
has err "vaktd: too many vakt flows subscribers"

# vaktd not running: no socket, or a socket file nobody listens on.
run 2 --socket "$TMP/nothing.sock"
has err "does not exist: vaktd is not running"
python3 "$HERE/fake_vaktd.py" --socket "$TMP/stale.sock" --stale
run 2 --socket "$TMP/stale.sock"
has err "refuses connections: vaktd is not running"

# Bad arguments.
run 2 -o yaml --socket "$SOCK"
has err "unknown format 'yaml'"
run 2 -n 0 --socket "$SOCK"
has err "not a positive number"
run 2 extra
has err "unexpected argument 'extra'"
run 0 --help
has out "usage: vakt flows"

echo "flows cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
