#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: the seed scenario of examples/ enforced by vaktd on real network
# namespaces. A "node" namespace routes between three pod namespaces over
# veth pairs (like a routed CNI); vaktd runs in the node namespace, reads
# examples/ and puts its programs on the pods' veths. Then real connections
# show what is allowed and what is denied, and `vakt status` shows the
# counters. Everything is removed at the end, also on failure or Ctrl-C.
# Needs root. Exit status 0 only if every connection behaved as expected.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
VAKTD=$BUILD/vaktd
VAKT=$BUILD/vakt
EXAMPLES=${EXAMPLES:-examples}

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo needs root: it creates network namespaces and loads BPF programs." >&2
	exit 1
fi
tools/install-deps.sh
[ -x "$VAKTD" ] && [ -x "$VAKT" ] || { echo "build first: make" >&2; exit 1; }

NETNS_PREFIX=vkt-demo-$$
# shellcheck source=../tests/e2e/lib.sh
. tests/e2e/lib.sh
ns_init
NODE=$NETNS_PREFIX-node
BPFFS=/sys/fs/bpf/$NETNS_PREFIX
WORK=$(mktemp -d "/tmp/$NETNS_PREFIX.XXXXXX")
demo_cleanup() {
	rm -rf "$BPFFS"
	if [ "${DEMO_OK:-0}" != 1 ] && [ -f "$WORK/vaktd.log" ]; then
		echo; echo "--- vaktd log (last 30 lines) ---"; tail -n 30 "$WORK/vaktd.log"
	fi
	rm -rf "$WORK"
}
NS_CLEANUP_HOOKS+=(demo_cleanup)

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
step() { echo; bold "==> $*"; }

# The pods of examples/: "namespace name ip" per line, read with the same
# YAML reader the policy tests use.
mapfile -t PODS < <(python3 - "$EXAMPLES" <<'PY'
import os, sys
sys.path.insert(0, "tests/netpol")
import matrix
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    if f.endswith((".yaml", ".yml")):
        for doc in matrix.parse_yaml_documents(open(os.path.join(d, f)).read(), f):
            if doc and doc.get("kind") == "Pod":
                m = doc["metadata"]
                print(m.get("namespace", "default"), m["name"], doc["status"]["podIP"])
PY
)
[ ${#PODS[@]} -gt 0 ] || { echo "no pods found in $EXAMPLES" >&2; exit 1; }

step "Building a node with ${#PODS[@]} pods (network namespaces on veth pairs)"
ns_node "$NODE"
declare -A IP NSOF
i=0
for line in "${PODS[@]}"; do
	read -r podns name ip <<<"$line"
	i=$((i + 1))
	ns_pod "$NODE" "$NETNS_PREFIX-$name" "$ip" "veth-$name" routed
	IP[$name]=$ip
	NSOF[$name]=$NETNS_PREFIX-$name
	# every pod answers on 80 and 8080 with its name, so a connection shows who answered
	ns_spawn "$WORK/serve-$name.log" ip netns exec "$NETNS_PREFIX-$name" \
		python3 tests/e2e/netpod.py serve "$podns/$name" 80 8080
	printf '  pod %-22s ip %-13s host-side veth %s\n' "$podns/$name" "$ip" "veth-$name"
done

step "Starting vaktd in the node namespace: vaktd --objects $EXAMPLES --node node-1"
ns_spawn "$WORK/vaktd.log" nsenter --net="/run/netns/$NODE" "$VAKTD" --objects "$EXAMPLES" \
	--node node-1 --bpffs "$BPFFS" --metrics-addr 127.0.0.1:9964
if ! ns_wait_http "$NODE" http://127.0.0.1:9964/readyz 20; then
	echo "vaktd did not become ready" >&2
	exit 1
fi
echo "  vaktd is ready: policies compiled into the maps, programs on every pod veth"
sed -n 's/^/  log: /p' "$WORK/vaktd.log" | head -n 12

# check FROM TO PORT EXPECT: a real TCP connection from pod FROM to pod TO
fails=0
check() {
	local from=$1 to=$2 port=$3 expect=$4 got answer
	answer=$(ip netns exec "${NSOF[$from]}" timeout 2 bash -c \
		"exec 3<>/dev/tcp/${IP[$to]}/$port && head -n 1 <&3" 2>/dev/null || true)
	if [ -n "$answer" ]; then got=allowed; else got=denied; fi
	if [ "$got" = "$expect" ]; then mark="ok  "; else mark="FAIL"; fails=$((fails + 1)); fi
	printf '  [%s] %-9s -> %-9s TCP %-5s %-8s (expected %s)%s\n' "$mark" "$from" "$to" \
		"$port" "$got" "$expect" "${answer:+, answered by $answer}"
}

step "Real connections under the policies of $EXAMPLES"
echo "  default-deny-all isolates every pod of production both ways; only"
echo "  frontend -> backend on TCP 8080 is allowed (egress of frontend AND ingress of backend)."
check frontend backend 8080 allowed
check frontend backend 80 denied
check intruder backend 8080 denied
check intruder frontend 80 denied
check backend frontend 80 denied
check frontend intruder 8080 denied

step "The node itself may always talk to its pods (kubelet probes)"
answer=$(nsenter --net="/run/netns/$NODE" timeout 2 bash -c \
	"exec 3<>/dev/tcp/${IP[intruder]}/80 && head -n 1 <&3" 2>/dev/null || true)
if [ -n "$answer" ]; then
	echo "  [ok  ] node -> intruder TCP 80 allowed (answered by $answer)"
else
	echo "  [FAIL] node -> intruder TCP 80 denied"; fails=$((fails + 1))
fi

step "vakt status (read from the pinned maps)"
"$VAKT" status --bpffs "$BPFFS" | sed 's/^/  /'

step "A few of the Prometheus metrics (curl http://127.0.0.1:9964/metrics in the node namespace)"
nsenter --net="/run/netns/$NODE" curl -s -m 2 http://127.0.0.1:9964/metrics |
	grep -E '^vakt_(drops_total|forwarded_total|endpoints|build_info)' | grep -v ' 0$' |
	head -n 20 | sed 's/^/  /'

echo
if [ "$fails" -eq 0 ]; then
	DEMO_OK=1
	bold "demo: every connection behaved as the policies say. Cleaning up."
else
	bold "demo: $fails connection(s) did not behave as expected. Cleaning up."
	exit 1
fi
