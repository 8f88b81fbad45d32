#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `vakt status -o json` run as `kubectl exec` runs it in the DaemonSet's
# container: with only the capabilities manifests/20-daemonset.yaml grants
# (no CAP_SYS_ADMIN, so no program lookup by id) and no_new_privs. vaktd
# enforces the examples on network-namespace pods, in tcx mode and again with
# --force-clsact; status must report our programs on every pod veth, in the
# mode vaktd used, on both hooks.
# Needs root (network namespaces, a private bpffs); fails otherwise.
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
VAKTD=$BUILD/vaktd
VAKT=$BUILD/vakt
for b in "$VAKTD" "$VAKT"; do
	[ -x "$b" ] || { echo "FAIL: $b not built (make $b)"; exit 1; }
done
command -v setpriv >/dev/null || { echo "FAIL: setpriv (util-linux) missing"; exit 1; }

NETNS_PREFIX=vkt-stcap-$$
# shellcheck source=lib.sh
. tests/e2e/lib.sh
ns_init

daemonset_caps || exit 1
case " ${CAPS[*]} " in *" sys_admin "*) echo "FAIL: the DaemonSet grants SYS_ADMIN: this test proves nothing"; exit 1 ;; esac
BSET="-all$(printf ',+%s' "${CAPS[@]}")"

ns_seed_node st

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# run_case NAME MODE [VAKTD ARGS...]: vaktd until ready, then status with the DaemonSet's caps.
run_case() {
	local name=$1 mode=$2 pid
	shift 2
	rm -rf "${BPFFS:?}/vakt"
	ns_spawn "$WORK/$name.log" ip netns exec "$NODE" "$VAKTD" --objects examples --node node-1 \
		--bpffs "$BPFFS/vakt" --metrics-addr 127.0.0.1:9964 --flows-socket "$WORK/flows.sock" \
		--cleanup "$@"
	pid=$NS_LAST_PID
	if ! ns_wait_http "$NODE" http://127.0.0.1:9964/readyz 15; then
		bad "$name: vaktd not ready"
		sed 's/^/     log| /' "$WORK/$name.log" | tail -n 20
		kill -TERM -- "-$pid" 2>/dev/null || true
		return
	fi
	if ! ip netns exec "$NODE" setpriv --no-new-privs --inh-caps=-all --bounding-set="$BSET" -- \
		"$VAKT" status --bpffs "$BPFFS/vakt" -o json >"$WORK/$name.json" 2>"$WORK/$name.err"; then
		bad "$name: vakt status failed: $(head -c 300 "$WORK/$name.err")"
	elif python3 - "$WORK/$name.json" "$mode" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
mode = sys.argv[2]
att = st["attach"]
by_if = {i["interface"]: i for i in att["interfaces"]}
errs = []
if att["mode"] != mode:
    errs.append(f"attach.mode={att['mode']!r}, want {mode!r}")
for veth in ("vkstfe", "vkstbe", "vkstin"):
    i = by_if.get(veth)
    if not i:
        errs.append(f"{veth}: not listed (interfaces: {sorted(by_if)})")
        continue
    if i["mode"] != mode:
        errs.append(f"{veth}: mode={i['mode']!r}")
    for hook in ("ingress", "egress"):
        if not i[hook]:
            errs.append(f"{veth}: nothing reported on {hook}")
if errs:
    print("; ".join(errs))
    sys.exit(1)
print(", ".join(f"{v}: {by_if[v]['ingress']} / {by_if[v]['egress']}" for v in ("vkstfe", "vkstbe", "vkstin")))
PY
	then
		ok "$name: status with ${CAPS[*]} reports our $mode programs"
	else
		bad "$name: status with ${CAPS[*]} does not report our programs"
	fi
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

run_case tcx tcx
run_case clsact clsact --force-clsact

echo "status with the DaemonSet's capabilities: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -eq 2 ]
