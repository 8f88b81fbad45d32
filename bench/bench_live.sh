#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Live datapath over veth between network namespaces, side by side in one
# run: no program (the limit), vakt (vaktd enforcing a server ingress policy
# of N port entries), and an iptables FORWARD chain with N equivalent rules
# (conntrack ESTABLISHED first, as every real ruleset does), for N = 10,
# 1,000 and 10,000. For each: TCP throughput (iperf3), TCP request/response
# rate and p50 latency, new connections per second (build/bench/bench_rr),
# and the ratios against no program. Also: how long a new veth waits for
# its programs. Needs root. Runtime: about three minutes.
#   BUILD=build SECS=3 REPS=2 bench/bench_live.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
SECS=${SECS:-3}
REPS=${REPS:-2}
SIZES=${SIZES:-"10 1000 10000"}
VAKTD=$BUILD/vaktd
RR=$BUILD/bench/bench_rr
for f in "$VAKTD" "$RR"; do
	[ -x "$f" ] || { echo "bench_live: $f not built (make bench)" >&2; exit 1; }
done
for t in iperf3 iptables-restore bpftool python3; do
	command -v "$t" >/dev/null || { echo "bench_live: missing $t (tools/install-deps.sh)" >&2; exit 1; }
done

NETNS_PREFIX=vkt-bench-$$
# shellcheck source=../tests/e2e/lib.sh
. tests/e2e/lib.sh
ns_init
NODE=$NETNS_PREFIX-node
CLI=$NETNS_PREFIX-cli
SRV=$NETNS_PREFIX-srv
CLI_IP=10.244.1.10
SRV_IP=10.244.1.20
BPFFS=/sys/fs/bpf/$NETNS_PREFIX
WORK=$(mktemp -d "/tmp/$NETNS_PREFIX.XXXXXX")
OBJ=$WORK/objects
VAKTD_PID=
bench_cleanup() {
	[ -n "$VAKTD_PID" ] && kill -TERM "$VAKTD_PID" 2>/dev/null && wait "$VAKTD_PID" 2>/dev/null
	rm -rf "$BPFFS" "$WORK"
}
NS_CLEANUP_HOOKS+=(bench_cleanup)

ns_node "$NODE"
ns_pod "$NODE" "$CLI" "$CLI_IP" vcli
ns_pod "$NODE" "$SRV" "$SRV_IP" vsrv
ns_spawn "$WORK/iperf.log" ip netns exec "$SRV" iperf3 -s -p 5201
ns_spawn "$WORK/rr.log" ip netns exec "$SRV" "$RR" server 7000
# listening but allowed by no configuration: proves that one enforces
ns_spawn "$WORK/rr2.log" ip netns exec "$SRV" "$RR" server 7002
sleep 0.5
mkdir -p "$OBJ"

in_cli() { ip netns exec "$CLI" "$@"; }

# ports N: the N ports of the equivalent rule sets; the measured ones last.
filler_ports() { seq 20000 $((20000 + $1 - 4)); }

write_manifests() {
	local n=$1
	{
		cat <<-EOF
		apiVersion: v1
		kind: Namespace
		metadata: {name: bench}
		---
		apiVersion: v1
		kind: Pod
		metadata: {name: client, namespace: bench, labels: {app: client}}
		spec: {nodeName: node-1}
		status: {podIP: $CLI_IP}
		---
		apiVersion: v1
		kind: Pod
		metadata: {name: server, namespace: bench, labels: {app: server}}
		spec: {nodeName: node-1}
		status: {podIP: $SRV_IP}
		---
		apiVersion: networking.k8s.io/v1
		kind: NetworkPolicy
		metadata: {name: server-ingress, namespace: bench}
		spec:
		  podSelector: {matchLabels: {app: server}}
		  policyTypes: [Ingress]
		  ingress:
		  - from:
		    - podSelector: {matchLabels: {app: client}}
		    ports:
		EOF
		filler_ports "$n" | sed 's/.*/    - {protocol: TCP, port: &}/'
		for p in 5201 7000 7001; do echo "    - {protocol: TCP, port: $p}"; done
	} >"$OBJ/.bench.yaml.tmp"
	mv "$OBJ/.bench.yaml.tmp" "$OBJ/bench.yaml"
}

iptables_rules() {
	local n=$1
	{
		echo "*filter"
		echo ":FORWARD ACCEPT [0:0]"
		echo "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
		filler_ports "$n" | sed "s/.*/-A FORWARD -s $CLI_IP\/32 -d $SRV_IP\/32 -p tcp --dport & -j ACCEPT/"
		for p in 5201 7000 7001; do
			echo "-A FORWARD -s $CLI_IP/32 -d $SRV_IP/32 -p tcp --dport $p -j ACCEPT"
		done
		echo "-A FORWARD -d $SRV_IP/32 -j DROP"
		echo "COMMIT"
	} | ip netns exec "$NODE" iptables-restore
}

iptables_flush() {
	printf '*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n' | ip netns exec "$NODE" iptables-restore
}

metrics_get() { nsenter --net="/run/netns/$NODE" curl -s -m 2 http://127.0.0.1:9964/metrics; }

vaktd_start() {
	nsenter --net="/run/netns/$NODE" "$VAKTD" --objects "$OBJ" --node node-1 --bpffs "$BPFFS" \
		--metrics-addr 127.0.0.1:9964 --cleanup >"$WORK/vaktd.log" 2>&1 &
	VAKTD_PID=$!
	ns_wait_http "$NODE" http://127.0.0.1:9964/readyz 30 || { tail "$WORK/vaktd.log"; exit 1; }
}

vaktd_reload() {
	local before
	before=$(metrics_get | awk '$1=="vakt_source_reloads_total"{print $2}')
	write_manifests "$1"
	for _ in $(seq 300); do
		[ "$(metrics_get | awk '$1=="vakt_source_reloads_total"{print $2}')" != "$before" ] && break
		sleep 0.1
	done
	ns_wait_http "$NODE" http://127.0.0.1:9964/readyz 30
}

# measure LABEL: best of REPS for each figure (this machine is noisy); measuring
# a label again keeps the best of both runs
declare -A TPUT RR P50 CRR
measure() {
	local label=$1 best_t=${TPUT[$1]:-0} best_rr=${RR[$1]:-0} best_p50=${P50[$1]:-999999}
	local best_c=${CRR[$1]:-0} out v r
	for ((r = 0; r < REPS; r++)); do
		out=$(in_cli iperf3 -c "$SRV_IP" -p 5201 -t "$SECS" -J)
		v=$(python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))' <<<"$out")
		((v > best_t)) && best_t=$v
		out=$(in_cli "$RR" rr "$SRV_IP" 7000 "$SECS")
		v=$(sed -n 's/.*rr_tps=\([0-9]*\).*/\1/p' <<<"$out")
		((v > best_rr)) && best_rr=$v
		v=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<<"$out")
		best_p50=$(python3 -c "print(min($best_p50, $v))")
		out=$(in_cli "$RR" crr "$SRV_IP" 7000 "$SECS")
		v=$(sed -n 's/.*crr_cps=\([0-9]*\).*/\1/p' <<<"$out")
		((v > best_c)) && best_c=$v
	done
	TPUT[$label]=$best_t RR[$label]=$best_rr P50[$label]=$best_p50 CRR[$label]=$best_c
	printf '  %-14s %9.2f Gbit/s %9d tx/s  p50 %7.2f us %8d conn/s\n' "$label" \
		"$(python3 -c "print($best_t/1e9)")" "$best_rr" "$best_p50" "$best_c"
}

denied_check() {
	if in_cli timeout 1 bash -c "exec 3<>/dev/tcp/$SRV_IP/7002" 2>/dev/null; then
		echo "bench_live: $1 did not enforce (port 7002 reachable)" >&2
		exit 1
	fi
}

echo "bench_live: ${SECS}s per figure, best of $REPS, sizes: $SIZES"
LABELS=(none)
if ! in_cli timeout 1 bash -c "exec 3<>/dev/tcp/$SRV_IP/7002" 2>/dev/null; then
	echo "bench_live: port 7002 unreachable without any program: the setup is broken" >&2
	exit 1
fi
measure none
for n in $SIZES; do
	iptables_rules "$n"
	denied_check "iptables-$n"
	LABELS+=("iptables-$n")
	measure "iptables-$n"
done
iptables_flush
first=1
for n in $SIZES; do
	if [ $first = 1 ]; then write_manifests "$n"; vaktd_start; first=0; else vaktd_reload "$n"; fi
	denied_check "vakt-$n"
	LABELS+=("vakt-$n")
	measure "vakt-$n"
done

# A new veth: time from `ip link add` until vaktd logged the attachment
# (its log timestamps and EPOCHREALTIME are the same clock).
attach_ms=()
for i in 1 2 3 4 5; do
	t0=$EPOCHREALTIME
	ip -n "$NODE" link add "vnew$i" type veth peer name "vpeer$i"
	line=
	for _ in $(seq 200); do
		line=$(grep -m1 "msg=\"attached\" ifname=vnew$i " "$WORK/vaktd.log" || true)
		[ -n "$line" ] && break
		sleep 0.01
	done
	if [ -z "$line" ]; then
		attach_ms+=("never")
	else
		attach_ms+=("$(python3 - "$t0" "$line" <<'PY'
import datetime, sys
ts = sys.argv[2].split()[0][3:].rstrip("Z")
t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
print(round((t.timestamp() - float(sys.argv[1])) * 1000, 1))
PY
)")
	fi
	ip -n "$NODE" link del "vnew$i"
done

# The limit again, at the end: drift of the machine's load over the run must
# not be mistaken for the cost of a configuration.
kill -TERM "$VAKTD_PID" && wait "$VAKTD_PID" || true
VAKTD_PID=
if ! in_cli timeout 1 bash -c "exec 3<>/dev/tcp/$SRV_IP/7002" 2>/dev/null; then
	echo "bench_live: vaktd --cleanup left programs behind (port 7002 unreachable)" >&2
	exit 1
fi
measure none

echo
echo "ratios against no program (throughput, request rate, new connections; p50 added in us):"
for l in "${LABELS[@]}"; do
	python3 - "$l" "${TPUT[$l]}" "${TPUT[none]}" "${RR[$l]}" "${RR[none]}" "${CRR[$l]}" \
		"${CRR[none]}" "${P50[$l]}" "${P50[none]}" <<'PY'
import sys
l, t, t0, r, r0, c, c0, p, p0 = sys.argv[1], *map(float, sys.argv[2:])
print("  %-14s tput %5.1f%%  rr %5.1f%%  crr %5.1f%%  p50 %+6.2f us" % (
    l, 100 * t / t0, 100 * r / r0, 100 * c / c0, p - p0))
PY
done
echo "new veth -> programs attached (ms, from vaktd's log; 5 trials): ${attach_ms[*]}"
