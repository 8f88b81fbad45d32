#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vaktd with exactly the capabilities manifests/20-daemonset.yaml grants (read
# from the manifest), no_new_privs (allowPrivilegeEscalation: false) and a
# bounding set without anything else, on network-namespace pods:
#   - it becomes ready with tcx links, and again after a restart (adoption);
#   - the same with --force-clsact (the path of kernels before 6.6);
#   - without any one of the granted capabilities it cannot start: each one
#     is needed (docs/install.md says what for).
# Needs root (network namespaces, a private bpffs); fails otherwise.
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
VAKTD=$BUILD/vaktd
[ -x "$VAKTD" ] || { echo "FAIL: $VAKTD not built (make $VAKTD)"; exit 1; }
command -v setpriv >/dev/null || { echo "FAIL: setpriv (util-linux) missing"; exit 1; }

NETNS_PREFIX=vkt-caps-$$
# shellcheck source=../e2e/lib.sh
. tests/e2e/lib.sh
ns_init

daemonset_caps || exit 1
echo "capabilities from the DaemonSet: ${CAPS[*]}"

ns_seed_node c

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# agent NAME CAPS... -- ARGS... : runs vaktd with exactly CAPS until it is ready
# (returns 0) or gives up (10 s, or vaktd exited), then stops it with SIGTERM.
agent() {
	local name=$1 bset="-all" pid ready=1
	shift
	while [ "$1" != "--" ]; do bset+=",+$1"; shift; done
	shift
	ip netns exec "$NODE" setpriv --no-new-privs --inh-caps=-all --bounding-set="$bset" -- \
		"$VAKTD" --objects examples --node node-1 --bpffs "$BPFFS/vakt" \
		--metrics-addr 127.0.0.1:9964 "$@" >"$WORK/$name.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		if ip netns exec "$NODE" curl -sf -o /dev/null http://127.0.0.1:9964/readyz; then
			ready=0
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ "$ready" -ne 0 ]; then
		ip netns exec "$NODE" curl -s http://127.0.0.1:9964/readyz >"$WORK/$name.why" 2>&1 || true
	fi
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	return $ready
}
show() {
	sed 's/^/     why| /' "$WORK/$1.why" 2>/dev/null || true
	grep -E 'level=(error|warn)' "$WORK/$1.log" | head -n 5 | cut -c1-240 | sed 's/^/     log| /'
}
expect_ready() {
	local name=$1
	shift
	if agent "$name" "${CAPS[@]}" -- "$@"; then ok "$name: ready with ${CAPS[*]}"; else
		bad "$name: not ready with ${CAPS[*]}"; show "$name"; fi
}

expect_ready tcx-first
expect_ready tcx-restart
if [ -z "$(ls "$BPFFS/vakt/links" 2>/dev/null)" ] && ! grep -q 'mode=tcx' "$WORK/tcx-restart.log"; then
	echo "note: tcx not used (kernel without tcx?)"
fi
ip netns exec "$NODE" "$VAKTD" --objects examples --node node-1 --bpffs "$BPFFS/vakt" \
	--metrics-addr 127.0.0.1:9964 --cleanup >"$WORK/cleanup.log" 2>&1 &
CPID=$!
sleep 1
kill -TERM "$CPID" 2>/dev/null || true
wait "$CPID" 2>/dev/null || true
expect_ready clsact-first --force-clsact
expect_ready clsact-restart --force-clsact

# Each capability is needed: without it the agent cannot get ready.
for drop in "${CAPS[@]}"; do
	keep=()
	for c in "${CAPS[@]}"; do [ "$c" = "$drop" ] || keep+=("$c"); done
	rm -rf "${BPFFS:?}/vakt"
	if agent "without-$drop" "${keep[@]}" --; then
		bad "ready without $drop: the capability is not needed"
	else
		ok "not ready without $drop ($(grep -m1 -oE 'detail="[^"]{0,90}' "$WORK/without-$drop.log" || echo "see log"))"
	fi
done

echo "capabilities: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
