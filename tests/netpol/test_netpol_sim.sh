#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks every scenario step of tests/netpol (the upstream Kubernetes netpol
# e2e tests, transcribed) through `vakt sim --matrix`: one sim run per truth
# table of the step's expected.txt, results compared pair by pair.
# Fails on any mismatch, any sim error, or when no scenario ran.
#   BUILD=dir       build directory holding the vakt binary (default: build)
#   NETPOL_ONLY=s   run only the steps whose directory contains s
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
VAKT=$BUILD/vakt
NETPOL=tests/netpol

if [ ! -x "$VAKT" ]; then
	echo "test_netpol_sim: $VAKT is missing (make $VAKT)" >&2
	exit 1
fi
command -v python3 >/dev/null || { echo "test_netpol_sim: python3 is required" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vkt-netpol.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# one line per step: DIR<TAB>FILE,FILE...<TAB>PORT/PROTO PORT/PROTO...
plan_text=$(python3 "$NETPOL/matrix.py" plan)
mapfile -t plan <<<"$plan_text"
if [ -z "$plan_text" ]; then
	echo "test_netpol_sim: no scenario found under $NETPOL/scenarios" >&2
	exit 1
fi
pass=0 fail=0 tables=0
failed=()

for line in "${plan[@]}"; do
	IFS=$'\t' read -r dir filelist tablelist <<<"$line"
	rel=${dir#"$ROOT"/"$NETPOL"/scenarios/}
	if [ -n "${NETPOL_ONLY:-}" ] && [[ $rel != *"$NETPOL_ONLY"* ]]; then
		continue
	fi
	IFS=, read -r -a files <<<"$filelist"
	read -r -a want <<<"$tablelist"
	fargs=()
	for f in "${files[@]}"; do fargs+=(-f "$f"); done
	rm -f "$tmp"/*.json
	ok=1
	for t in "${want[@]}"; do
		port=${t%/*} proto=${t#*/}
		out=$tmp/$port-$proto.json
		rc=0
		"$VAKT" sim "${fargs[@]}" --matrix --port "$port" --protocol "$proto" -o json \
			>"$out" 2>"$tmp/stderr" || rc=$?
		tables=$((tables + 1))
		if [ "$rc" -ne 0 ]; then
			echo "FAIL $rel: vakt sim ${fargs[*]} --matrix --port $port --protocol $proto exited $rc"
			sed 's/^/    | /' "$tmp/stderr"
			ok=0
		fi
	done
	if [ "$ok" -eq 1 ] && [ "${#want[@]}" -gt 0 ]; then
		rc=0
		python3 "$NETPOL/compare.py" "$dir" "$tmp"/*.json || rc=$?
		[ "$rc" -eq 0 ] || ok=0
	elif [ "${#want[@]}" -eq 0 ]; then
		echo "FAIL $rel: expected.txt has no table"
		ok=0
	fi
	if [ "$ok" -eq 1 ]; then
		pass=$((pass + 1))
		echo "ok   $rel"
	else
		fail=$((fail + 1))
		failed+=("$rel")
		echo "FAIL $rel"
	fi
done

echo
if [ "$fail" -gt 0 ]; then
	printf 'failed: %s\n' "${failed[@]}"
fi
echo "netpol sim: $pass steps passed, $fail failed ($tables tables)"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
