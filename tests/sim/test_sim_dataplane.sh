#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vakt sim --dataplane: the real BPF programs, through BPF_PROG_TEST_RUN on
# synthesised packets, answer the same queries as the compiled tables and
# must agree with them. Covers the seed scenario (examples/), every step and
# truth table of the transcribed upstream scenarios (tests/netpol, compared
# with expected.txt by compare.py, as the tables path is), IPv6, SCTP, named
# ports, ends outside the cluster (deferred egress completed in
# vakt_node_egress), hostNetwork, the error without root, and - through a
# test build with a hook that corrupts one kernel map entry - that a
# disagreement between kernel and tables is reported (exit 2).
# Needs root; fails (does not skip) without it.
#   BUILD=dir        build directory (default: build)
#   NETPOL_ONLY=s    only the netpol steps whose directory contains s
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
VAKT=$BUILD/vakt
EX=examples
FX=tests/sim/fixtures/dualstack.yaml
NETPOL=tests/netpol
TMP=$(mktemp -d /tmp/vkt-simdp-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

[ "$(id -u)" -eq 0 ] || { echo "FAIL: needs root (BPF_PROG_TEST_RUN)"; exit 1; }
[ -x "$VAKT" ] || { echo "FAIL: $VAKT not built (make $VAKT)"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is required"; exit 1; }

# shellcheck source=lib.sh
. tests/sim/lib.sh

# same_as_tables ARGS... : the --dataplane matrix is byte-identical to the tables' matrix.
same_as_tables() {
	run 0 sim "$@"
	cp "$TMP/out" "$TMP/tables.out"
	run 0 sim --dataplane "$@"
	if diff -u "$TMP/tables.out" "$TMP/out" >"$TMP/diff"; then ok "kernel matrix == tables matrix: $*"; else
		bad "kernel matrix differs: $*"; cat "$TMP/diff"; fi
}

echo "== seed scenario (examples/)"
run 0 sim --dataplane -f $EX --from production/frontend --to production/backend --port 8080
has out "production/frontend (10.244.1.10) -> production/backend (10.244.1.20) TCP 8080: allowed"
has out "egress of production/frontend: isolated; allowed by production/frontend-egress-to-backend rule 0"
has out "kernel (BPF_PROG_TEST_RUN): egress allowed by vakt_from_pod (policy_allow), ingress allowed by vakt_to_pod (policy_allow): allowed"
run 1 sim --dataplane -f $EX --from production/intruder --to production/backend --port 8080
has out "egress denied by vakt_from_pod (policy_denied), ingress denied by vakt_to_pod (policy_denied): denied"
run 1 sim --dataplane -f $EX --from production/frontend --to production/backend --port 8080 --protocol UDP
run 1 sim --dataplane -f $EX --from production/backend --to production/frontend --port 8080
run 0 sim --dataplane -f $EX --from production/intruder --to production/intruder --port 22
has out "self: a pod always reaches itself"
run 0 sim --dataplane -f $EX --from production/frontend --to production/backend --port 8080 -o json
jcheck 'j["dataplane"] is True and j["allowed"] is True'
jcheck 'j["egress"]["kernel"] == {"allowed": True, "program": "vakt_from_pod", "reason": "policy_allow", "deferred": False}'
jcheck 'j["ingress"]["kernel"] == {"allowed": True, "program": "vakt_to_pod", "reason": "policy_allow", "deferred": False}'
jcheck 'j["egress"]["reason"] == "policy_allow" and j["ingress"]["matched"]["policy"] == "production/backend-ingress-from-frontend"'
run 0 sim -f $EX --from production/frontend --to production/backend --port 8080 -o json
jcheck '"dataplane" not in j and "kernel" not in j["egress"]'
same_as_tables -f $EX --matrix --port 22 --port 53 --port 80 --port 8080 --port http \
	--protocol TCP --protocol UDP --protocol SCTP
run 0 sim --dataplane -f $EX --matrix --port 8080 -o json
jcheck 'j["dataplane"] is True and len(j["results"]) == 9'
jcheck 'sorted((r["from"], r["to"]) for r in j["results"] if r["allowed"]) == [("production/backend", "production/backend"), ("production/frontend", "production/backend"), ("production/frontend", "production/frontend"), ("production/intruder", "production/intruder")]'

echo "== named ports"
run 0 sim --dataplane -f $EX --from production/frontend --to production/backend --port http
has out "TCP http (8080): allowed"
has out "kernel (BPF_PROG_TEST_RUN)"
run 1 sim --dataplane -f $FX --from web/client --to web/server --port dns --protocol UDP -o json
jcheck 'j["resolved_port"] == 53 and j["egress"]["kernel"]["allowed"] is True and j["ingress"]["kernel"]["reason"] == "policy_denied"'
run 1 sim --dataplane -f $FX --from web/client --to web/server --port metrics

echo "== IPv6 and dual stack"
run 0 sim --dataplane -f $FX --from fd00:10::3 --to fd00:10::2 --port 8080 -o json
jcheck 'j["from_ip"] == "fd00:10::3" and j["egress"]["kernel"]["reason"] == "policy_allow" and j["ingress"]["kernel"]["reason"] == "policy_allow"'
run 0 sim --dataplane -f $FX --from 2001:db8::1 --to web/server --port 8080 -o json
jcheck 'j["to_ip"] == "fd00:10::2" and j["egress"]["kernel"] is None and j["ingress"]["kernel"]["allowed"] is True'
run 1 sim --dataplane -f $FX --from 2001:db8::1 --to web/server --port 9100
same_as_tables -f $FX --matrix --port 8080 --port http --port 53 --protocol TCP --protocol UDP

echo "== outside the cluster: egress deferred by vakt_from_pod, decided by vakt_node_egress"
run 0 sim --dataplane -f $FX --from web/client --to 198.51.100.9 --port 443 -o json
jcheck 'j["egress"]["kernel"] == {"allowed": True, "program": "vakt_node_egress", "reason": "policy_allow", "deferred": True}'
jcheck 'j["ingress"]["kernel"] is None and j["ingress"]["enforced"] is False'
run 1 sim --dataplane -f $FX --from web/client --to 198.51.100.9 --port 80
has out "egress denied by vakt_node_egress after vakt_from_pod deferred it (policy_denied)"
run 0 sim --dataplane -f $FX --from 192.0.2.7 --to web/server --port 8080
has out "egress not enforced, ingress allowed by vakt_to_pod (policy_allow)"
run 1 sim --dataplane -f $FX --from 192.0.2.200 --to web/server --port 8080
run 1 sim --dataplane -f $EX --from 203.0.113.9 --to production/frontend --port 80
echo "== hostNetwork"
run 1 sim --dataplane -f $FX --from ops/node-agent --to web/server --port 8080
has out "egress not enforced, ingress denied by vakt_to_pod (policy_denied)"

echo "== SCTP"
S47=(-f $NETPOL/base.yaml -f $NETPOL/scenarios/47-sctp-ports/policies.yaml)
run 0 sim --dataplane "${S47[@]}" --from y/b --to x/a --port 81 --protocol SCTP -o json
jcheck 'j["protocol"] == "SCTP" and j["ingress"]["kernel"] == {"allowed": True, "program": "vakt_to_pod", "reason": "policy_allow", "deferred": False}'
jcheck 'j["ingress"]["matched"]["policy"] == "x/allow-ingress-on-port-81-ns-x"'
run 1 sim --dataplane "${S47[@]}" --from z/b --to x/a --port 81 --protocol SCTP
has out "ingress denied by vakt_to_pod (policy_denied)"
run 1 sim --dataplane "${S47[@]}" --from y/b --to x/a --port 81 --protocol TCP
run 0 sim --dataplane "${S47[@]}" --from y/b --to x/a --port serve-81-sctp --protocol SCTP
has out "SCTP serve-81-sctp (81): allowed"
run 1 sim --dataplane -f $FX --from web/client --to web/server --port 8080 --protocol SCTP -o json
jcheck 'j["egress"]["kernel"]["allowed"] is True and j["ingress"]["kernel"]["reason"] == "policy_denied"'

echo "== upstream scenarios (tests/netpol): every step, every table, against expected.txt"
plan_text=$(python3 "$NETPOL/matrix.py" plan)
[ -n "$plan_text" ] || { bad "no netpol scenario found"; plan_text=""; }
mapfile -t plan <<<"$plan_text"
steps=0 tables=0 sctp_allowed=0
for line in "${plan[@]}"; do
	[ -n "$line" ] || continue
	IFS=$'\t' read -r dir filelist tablelist <<<"$line"
	rel=${dir#"$ROOT"/"$NETPOL"/scenarios/}
	if [ -n "${NETPOL_ONLY:-}" ] && [[ $rel != *"$NETPOL_ONLY"* ]]; then continue; fi
	IFS=, read -r -a files <<<"$filelist"
	read -r -a want <<<"$tablelist"
	args=()
	for f in "${files[@]}"; do args+=(-f "$f"); done
	# One load of the programs per step: every wanted port and protocol crossed
	# (extra port/protocol pairs are not in expected.txt and compare.py ignores them).
	declare -A seenp=() seenq=()
	for t in "${want[@]}"; do
		p=${t%/*} q=${t#*/}
		[ -n "${seenp[$p]:-}" ] || { args+=(--port "$p"); seenp[$p]=1; }
		[ -n "${seenq[$q]:-}" ] || { args+=(--protocol "$q"); seenq[$q]=1; }
		tables=$((tables + 1))
	done
	unset seenp seenq
	rc=0
	"$VAKT" sim --dataplane "${args[@]}" --matrix -o json >"$TMP/step.json" 2>"$TMP/err" || rc=$?
	steps=$((steps + 1))
	if [ "$rc" -ne 0 ]; then
		bad "$rel: vakt sim --dataplane exited $rc"; sed 's/^/     err| /' "$TMP/err"; continue
	fi
	if python3 "$NETPOL/compare.py" "$dir" "$TMP/step.json" >"$TMP/cmp" 2>&1; then
		ok "netpol $rel (${#want[@]} tables)"
	else
		bad "netpol $rel"; sed 's/^/     | /' "$TMP/cmp"
	fi
	sctp_allowed=$((sctp_allowed + $(python3 -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1]))["results"] if r["protocol"] == "SCTP" and r["allowed"] and r["from"] != r["to"]))' "$TMP/step.json")))
done
echo "   netpol: $steps steps, $tables tables through the kernel"
if [ -z "${NETPOL_ONLY:-}" ]; then
	[ "$steps" -ge 100 ] && ok "all netpol steps ran ($steps)" || bad "only $steps netpol steps ran"
	[ "$sctp_allowed" -gt 0 ] && ok "SCTP flows allowed by the kernel in netpol ($sctp_allowed)" ||
		bad "no SCTP flow was allowed in any netpol step"
fi

echo "== errors"
if command -v setpriv >/dev/null; then
	runb 2 setpriv --reuid=65534 --regid=65534 --clear-groups "$VAKT" sim --dataplane -f $EX \
		--from production/frontend --to production/backend --port 8080
	has err "--dataplane needs root"
	one_err_line
else
	bad "setpriv missing: cannot prove the error without root"
fi

echo "== a disagreement between kernel and tables is reported (test build with a hook)"
# The hook exists only when simcore.c is compiled with -DVAKT_SIM_TEST_HOOKS:
# build such a vakt from the regular objects plus that one file.
HOOKED=$TMP/vakt-hooks
objs=()
for o in "$BUILD"/tools/*.o; do [ "$(basename "$o")" = simcore.o ] || objs+=("$o"); done
if gcc -O2 -g -std=gnu11 -D_GNU_SOURCE -DVAKT_VERSION='"test-hooks"' -DVAKT_SIM_TEST_HOOKS \
	-Iinclude -Iagent -I"$BUILD" -c tools/simcore.c -o "$TMP/simcore-hooks.o" &&
	gcc -o "$HOOKED" "${objs[@]}" "$TMP/simcore-hooks.o" "$BUILD/libvakt.a" \
		-lbpf -lelf -lz -lmnl -ljansson -lcurl -lyaml -lm; then
	ok "built $HOOKED"
	# backend's kernel endpoint loses its policy ids: the kernel lets the intruder in.
	export VAKT_SIM_TEST_OPEN_ENDPOINT=10.244.1.20
	runb 2 "$HOOKED" sim --dataplane -f $EX --from production/intruder --to production/backend --port 8080
	has err "internal inconsistency on ingress of production/backend: kernel says allowed (vakt_to_pod, reason not_isolated), tables say denied (reason policy_denied)"
	one_err_line
	runb 2 "$HOOKED" sim --dataplane -f $EX --matrix --port 8080
	has err "internal inconsistency"
	# Without --dataplane nothing asks the kernel: the same query answers normally.
	runb 1 "$HOOKED" sim -f $EX --from production/intruder --to production/backend --port 8080
	# The hook is not in the regular binary.
	run 1 sim --dataplane -f $EX --from production/intruder --to production/backend --port 8080
	unset VAKT_SIM_TEST_OPEN_ENDPOINT
	runb 1 "$HOOKED" sim --dataplane -f $EX --from production/intruder --to production/backend --port 8080
else
	bad "cannot build the test-hook binary"
fi

echo
echo "sim dataplane: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
