#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vaktd on the Kubernetes API at cluster scale (issue 4's performance goals):
# PODS pods (default 150,000), POLICIES policies (10,000) and NAMESPACES
# namespaces (2,000) over NODES nodes (5,000), served by the test API server
# (tests/apiserver/server.py, loaded at its start). vaktd runs in a network
# namespace with its ~30 local pods on veths, like a node of that cluster.
#
# Measured:
#   initial sync   vaktd start -> /readyz 200 (lists of every resource,
#                  full compile, reconcile of empty pinned maps, attach)
#   event latency  API request sent -> pinned map changed, p50 and p99 over
#                  EVENTS changes (pod create/delete on another node -> ipcache,
#                  policy create/delete selecting a local pod -> its endpoint
#                  record); includes the Python test server's own latency
#   RSS            vaktd's VmRSS after the sync and after the events, VmHWM
# Goals: event p99 <= 50 ms, RSS <= 300 MB. Needs root (netns, BPF).
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PODS=${PODS:-150000}
POLICIES=${POLICIES:-10000}
NAMESPACES=${NAMESPACES:-2000}
NODES=${NODES:-5000}
EVENTS=${EVENTS:-400}
NETNS_PREFIX=vkt-bk-$$
# shellcheck source=../tests/e2e/lib.sh
source tests/e2e/lib.sh
TMP=$(mktemp -d "/tmp/$NETNS_PREFIX-XXXXXX")
BPFFS=/sys/fs/bpf/$NETNS_PREFIX
bk_cleanup() { rm -rf "$TMP" "$BPFFS"; }
NS_CLEANUP_HOOKS+=(bk_cleanup)
ns_init
for f in "$BUILD/vaktd" tests/apiserver/server.py; do
	[ -e "$f" ] || { echo "bench_kube: $f missing (make)" >&2; exit 1; }
done

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rss_mb() { awk -v k="$2:" '$1 == k { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
# CPU seconds (user + system) of a process: which side of the sync is the bottleneck.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' "/proc/$1/stat"; }

NODE=$NETNS_PREFIX-node
ns_node "$NODE"
t=$(now)
python3 bench/bench_kube.py gen "$TMP/cluster.json" --pods "$PODS" --policies "$POLICIES" \
	--namespaces "$NAMESPACES" --nodes "$NODES" --node bench-node >"$TMP/local.txt"
echo "cluster: $PODS pods, $POLICIES policies, $NAMESPACES namespaces, $NODES nodes;" \
	"$(wc -l <"$TMP/local.txt") pods on this node (generated in $(secs "$t" "$(now)") s," \
	"$(($(stat -c %s "$TMP/cluster.json") / 1048576)) MiB of JSON)"
i=0
while read -r key ip; do
	i=$((i + 1))
	ns_pod "$NODE" "$NETNS_PREFIX-p$i" "$ip" "vbk$i"
done <"$TMP/local.txt"

t=$(now)
ns_spawn "$TMP/apiserver.log" nsenter --net="/run/netns/$NODE" python3 tests/apiserver/server.py \
	--port 0 --dir "$TMP/api" --objects "$TMP/cluster.json"
APISERVER_PID=$NS_LAST_PID
for ((n = 0; n < 1200; n++)); do
	grep -q '^{' "$TMP/apiserver.log" 2>/dev/null && break
	sleep 0.5
done
grep '^{' "$TMP/apiserver.log" >"$TMP/info.json" || { echo "API server did not start" >&2; cat "$TMP/apiserver.log" >&2; exit 1; }
echo "test API server loaded the objects in $(secs "$t" "$(now)") s"
KUBECONFIG_FILE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kubeconfig"])' "$TMP/info.json")

t=$(now)
ns_spawn "$TMP/vaktd.log" nsenter --net="/run/netns/$NODE" "$BUILD/vaktd" --kubeconfig "$KUBECONFIG_FILE" \
	--node bench-node --bpffs "$BPFFS" --metrics-addr 127.0.0.1:9964 --flows-socket ''
VAKTD_PID=$NS_LAST_PID
if ! ns_wait_http "$NODE" http://127.0.0.1:9964/readyz 600; then
	echo "vaktd not ready after 600 s" >&2
	tail -20 "$TMP/vaktd.log" >&2
	exit 1
fi
sync_s=$(secs "$t" "$(now)")
[ "$(cat "/proc/$VAKTD_PID/comm")" = vaktd ] || { echo "pid $VAKTD_PID is not vaktd" >&2; exit 1; }
rss_sync=$(rss_mb "$VAKTD_PID" VmRSS)
echo "initial sync: vaktd start -> ready in $sync_s s; RSS $rss_sync MB;" \
	"CPU: vaktd $(cpu_s "$VAKTD_PID") s, API server $(cpu_s "$APISERVER_PID") s (incl. its load)"
grep -E 'msg="(initial list done|compiled|maps reconciled|running)"' "$TMP/vaktd.log" |
	sed -E 's/^ts=[^ ]+ level=info //; s/^/    /'

local_pod=$(head -1 "$TMP/local.txt" | tr ' ' ',')
echo "API event -> pinned map ($EVENTS events, one at a time):"
nsenter --net="/run/netns/$NODE" python3 bench/bench_kube.py events "$TMP/info.json" "$BPFFS" \
	"$local_pod" --count "$EVENTS" | tee "$TMP/events.txt"
echo "vaktd RSS: after sync $rss_sync MB, after the events $(rss_mb "$VAKTD_PID" VmRSS) MB," \
	"peak $(rss_mb "$VAKTD_PID" VmHWM) MB (goal <= 300)"
p99=$(awk '$1 == "all_p99_ms" { print $2 }' "$TMP/events.txt")
awk -v p="$p99" 'BEGIN { exit !(p <= 50) }' && echo "event p99 $p99 ms: within the 50 ms goal" ||
	echo "event p99 $p99 ms: OVER the 50 ms goal"
