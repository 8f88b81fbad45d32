#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the datapath costs per packet under real traffic, measured by the
# kernel: a node namespace and two pod namespaces on veth (as
# bench/bench_live.sh), vaktd enforcing a seed-like policy (default deny both
# ways, client egress to the server and server ingress from the client on the
# measured ports), kernel.bpf_stats_enabled=1, and run_time_ns / run_cnt of
# vakt_from_pod and vakt_to_pod read with bpftool over a request/response
# workload (build/bench/bench_rr) and a bulk one (iperf3). The same with an
# EMPTY TC program (returns TC_ACT_UNSPEC) attached the same way (tcx links
# on the same four hooks) gives the floor: ns per run side by side.
# Also the TCP request/response p50 added per transaction against no program
# (stats off for those runs: the accounting itself costs two clock reads per
# run), best of REPS, for the empty program, vakt, an nftables set and an
# iptables FORWARD chain with conntrack, with equivalent rules.
# Restores the sysctl and removes namespaces and pins on any exit.
# Needs root. Runtime: about 90 s (SECS=3 REPS=3).
#   BUILD=build SECS=3 REPS=3 bench/bench_live_stats.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
SECS=${SECS:-3}
REPS=${REPS:-3}
VAKTD=$BUILD/vaktd
RR=$BUILD/bench/bench_rr
for f in "$VAKTD" "$RR"; do
	[ -x "$f" ] || { echo "bench_live_stats: $f not built (make bench)" >&2; exit 1; }
done
for t in iperf3 iptables-restore nft bpftool python3 nsenter; do
	command -v "$t" >/dev/null || { echo "bench_live_stats: missing $t (tools/install-deps.sh)" >&2; exit 1; }
done

NETNS_PREFIX=vkt-bstat-$$
# shellcheck source=../tests/e2e/lib.sh
. tests/e2e/lib.sh
ns_init
NODE=$NETNS_PREFIX-node
CLI=$NETNS_PREFIX-cli
SRV=$NETNS_PREFIX-srv
CLI_IP=10.244.1.10
SRV_IP=10.244.1.20
BPFFS=/sys/fs/bpf/$NETNS_PREFIX
EMPTY_PINS=/sys/fs/bpf/$NETNS_PREFIX-empty
WORK=$(mktemp -d "/tmp/$NETNS_PREFIX.XXXXXX")
OBJ=$WORK/objects
VAKTD_PID=
STATS_SAVED=$(cat /proc/sys/kernel/bpf_stats_enabled)
stats_cleanup() {
	[ -n "$VAKTD_PID" ] && kill -TERM "$VAKTD_PID" 2>/dev/null && wait "$VAKTD_PID" 2>/dev/null
	sysctl -qw kernel.bpf_stats_enabled="$STATS_SAVED" || true
	rm -rf "$BPFFS" "$EMPTY_PINS" "$WORK"
}
NS_CLEANUP_HOOKS+=(stats_cleanup)

ns_node "$NODE"
ns_pod "$NODE" "$CLI" "$CLI_IP" vcli
ns_pod "$NODE" "$SRV" "$SRV_IP" vsrv
ns_spawn "$WORK/iperf.log" ip netns exec "$SRV" iperf3 -s -p 5201
ns_spawn "$WORK/rr.log" ip netns exec "$SRV" "$RR" server 7000
# listening but allowed by no configuration: proves that a configuration enforces
ns_spawn "$WORK/rr2.log" ip netns exec "$SRV" "$RR" server 7002
sleep 0.5
mkdir -p "$OBJ"
in_cli() { ip netns exec "$CLI" "$@"; }
in_node() { nsenter --net="/run/netns/$NODE" "$@"; }

# The seed scenario's shape: default deny both ways, one client->server allow
# on each side, for the ports measured here.
cat >"$OBJ/bench.yaml" <<EOF
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
metadata: {name: default-deny-all, namespace: bench}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress-to-server, namespace: bench}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: server}}}]
    ports: [{protocol: TCP, port: 5201}, {protocol: TCP, port: 7000}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-ingress-from-client, namespace: bench}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{protocol: TCP, port: 5201}, {protocol: TCP, port: 7000}]
EOF

# tcx helper: bpftool 7.1 cannot attach tcx, so the empty programs are loaded
# and linked with raw bpf(2) calls (BPF_PROG_LOAD, BPF_LINK_CREATE with
# BPF_TCX_INGRESS/EGRESS, BPF_OBJ_PIN), the way vaktd attaches; the pinned
# links keep them attached after the helper exits. `ids` prints the program
# ids behind pinned links.
cat >"$WORK/tcx.py" <<'PY'
import ctypes, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
NR_BPF = 321  # x86_64
PROG_LOAD, OBJ_PIN, OBJ_GET, INFO_BY_FD, LINK_CREATE = 5, 6, 7, 15, 28
TCX_INGRESS, TCX_EGRESS = 46, 47

def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(bytes(attr).ljust(160, b"\0"), 160)
    r = libc.syscall(NR_BPF, cmd, buf, 160)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, "bpf cmd %d: %s" % (cmd, os.strerror(e)))
    return r, buf

def load_empty(name):
    # r0 = -1 (TC_ACT_UNSPEC / TCX_NEXT); exit
    insns = struct.pack("<BBhi", 0xb7, 0, 0, -1) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    ib = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack("<IIQQIIQII16s", 3, 2, ctypes.addressof(ib), ctypes.addressof(lic),
                       0, 0, 0, 0, 0, name.encode())
    return bpf(PROG_LOAD, attr)[0]

def info_id(fd, off):
    info = ctypes.create_string_buffer(256)
    bpf(INFO_BY_FD, struct.pack("<IIQ", fd, 256, ctypes.addressof(info)))
    return struct.unpack_from("<I", info.raw, off)[0]

def pin(fd, path):
    p = ctypes.create_string_buffer(path.encode())
    bpf(OBJ_PIN, struct.pack("<QII", ctypes.addressof(p), fd, 0))

def get(path):
    p = ctypes.create_string_buffer(path.encode())
    return bpf(OBJ_GET, struct.pack("<QII", ctypes.addressof(p), 0, 0))[0]

if sys.argv[1] == "attach":  # attach DIR IFNAME...
    d = sys.argv[2]
    os.makedirs(d, exist_ok=True)
    progs = {"ingress": load_empty("vkt_bstat_e_in"), "egress": load_empty("vkt_bstat_e_out")}
    for ifname in sys.argv[3:]:
        idx = socket.if_nametoindex(ifname)
        for hook, at in (("ingress", TCX_INGRESS), ("egress", TCX_EGRESS)):
            link = bpf(LINK_CREATE, struct.pack("<IIII", progs[hook], idx, at, 0))[0]
            pin(link, "%s/%d-%s" % (d, idx, hook))
    print(info_id(progs["ingress"], 4), info_id(progs["egress"], 4))
elif sys.argv[1] == "ids":  # ids LINKPIN...: the program id of each pinned link
    print(" ".join(str(info_id(get(p), 8)) for p in sys.argv[2:]))
PY

ifidx() { ip -n "$NODE" -o link show "$1" | cut -d: -f1; }

# prog_stats ID: "run_time_ns run_cnt"
prog_stats() {
	bpftool prog show id "$1" -j | python3 -c \
		'import json,sys; j=json.load(sys.stdin); print(j.get("run_time_ns", 0), j.get("run_cnt", 0))'
}

denied_check() {
	if in_cli timeout 1 bash -c "exec 3<>/dev/tcp/$SRV_IP/7002" 2>/dev/null; then
		echo "bench_live_stats: $1 does not enforce (port 7002 reachable)" >&2
		exit 1
	fi
}

# rr_p50 LABEL: best p50 and request rate of REPS runs, with stats off.
declare -A P50 TPS NS_RR NS_BULK GBPS
rr_p50() {
	local best=999999 tps=0 out v t r
	sysctl -qw kernel.bpf_stats_enabled=0
	for ((r = 0; r < REPS; r++)); do
		out=$(in_cli "$RR" rr "$SRV_IP" 7000 "$SECS")
		v=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<<"$out")
		t=$(sed -n 's/.*rr_tps=\([0-9]*\).*/\1/p' <<<"$out")
		best=$(python3 -c "print(min($best, $v))")
		((t > tps)) && tps=$t
	done
	P50[$1]=$best TPS[$1]=$tps
}

# ns_per_run KEY "ID ID..." CMD...: runs CMD with stats on; sets NS_*[KEY.ID] to ns/run.
stats_run() {
	local -n into=$1
	local key=$2 ids=$3 id
	shift 3
	declare -A before
	sysctl -qw kernel.bpf_stats_enabled=1
	for id in $ids; do before[$id]=$(prog_stats "$id"); done
	"$@" >"$WORK/stats_run.out"
	for id in $ids; do
		read -r t0 c0 <<<"${before[$id]}"
		read -r t1 c1 <<<"$(prog_stats "$id")"
		into[$key.$id]=$(python3 -c "c=$c1-$c0; print('%.1f %d' % (($t1-$t0)/c if c else float('nan'), c))")
	done
	sysctl -qw kernel.bpf_stats_enabled=0
}

bulk() { in_cli iperf3 -c "$SRV_IP" -p 5201 -t "$SECS" -J >"$WORK/iperf.json"; }
gbps() { python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9))' "$WORK/iperf.json"; }

# measure_progs LABEL "ID_IN ID_OUT"
measure_progs() {
	local label=$1 ids=$2
	rr_p50 "$label"
	stats_run NS_RR "$label" "$ids" in_cli "$RR" rr "$SRV_IP" 7000 "$SECS"
	stats_run NS_BULK "$label" "$ids" bulk
	GBPS[$label]=$(gbps)
}

echo "bench_live_stats: ${SECS}s per run, p50 best of $REPS; bpf_stats_enabled was $STATS_SAVED"
if ! in_cli timeout 1 bash -c "exec 3<>/dev/tcp/$SRV_IP/7002" 2>/dev/null; then
	echo "bench_live_stats: port 7002 unreachable without any program: the setup is broken" >&2
	exit 1
fi
rr_p50 none
bulk; GBPS[none]=$(gbps)

# empty programs on the four hooks vakt uses (veth host sides, tcx ingress and egress)
ids=$(in_node python3 "$WORK/tcx.py" attach "$EMPTY_PINS" vcli vsrv)
read -r E_IN E_OUT <<<"$ids"
measure_progs empty "$E_IN $E_OUT"
rm -rf "$EMPTY_PINS" # unpinning the links detaches the empty programs

in_node "$VAKTD" --objects "$OBJ" --node node-1 --bpffs "$BPFFS" --metrics-addr 127.0.0.1:9964 \
	--cleanup >"$WORK/vaktd.log" 2>&1 &
VAKTD_PID=$!
ns_wait_http "$NODE" http://127.0.0.1:9964/readyz 30 || { tail "$WORK/vaktd.log"; exit 1; }
denied_check vakt
mode=$(grep -o 'mode=[a-z]*' "$WORK/vaktd.log" | head -1)
[ "$mode" = mode=tcx ] || echo "bench_live_stats: note: vaktd attached with $mode, not tcx" >&2
ids=$(in_node python3 "$WORK/tcx.py" ids "$BPFFS/links/$(ifidx vcli)-ingress" \
	"$BPFFS/links/$(ifidx vcli)-egress")
read -r V_FROM V_TO <<<"$ids"
for p in "$BPFFS/links/$(ifidx vsrv)-ingress" "$BPFFS/links/$(ifidx vsrv)-egress"; do
	[ -e "$p" ] || { echo "bench_live_stats: vaktd left no tcx link $p" >&2; exit 1; }
done
measure_progs vakt "$V_FROM $V_TO"
kill -TERM "$VAKTD_PID" && wait "$VAKTD_PID" || true
VAKTD_PID=

# nftables: one set of allowed (client, server, port), conntrack first.
in_node nft -f - <<EOF
table inet vkt_bench {
	set allowed {
		type ipv4_addr . ipv4_addr . inet_service
		elements = { $CLI_IP . $SRV_IP . 5201, $CLI_IP . $SRV_IP . 7000 }
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		ct state established,related accept
		ip saddr . ip daddr . tcp dport @allowed accept
		ip daddr $SRV_IP drop
	}
}
EOF
denied_check nftables
rr_p50 nftables
in_node nft delete table inet vkt_bench

{
	echo "*filter"
	echo ":FORWARD ACCEPT [0:0]"
	echo "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
	for p in 5201 7000; do echo "-A FORWARD -s $CLI_IP/32 -d $SRV_IP/32 -p tcp --dport $p -j ACCEPT"; done
	echo "-A FORWARD -d $SRV_IP/32 -j DROP"
	echo "COMMIT"
} | ip netns exec "$NODE" iptables-restore
denied_check iptables
rr_p50 iptables
printf '*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n' | ip netns exec "$NODE" iptables-restore

# the limit again at the end: machine drift must not pass for a configuration's cost
rr_p50 none2
[ "$(python3 -c "print(${P50[none2]} < ${P50[none]})")" = True ] && P50[none]=${P50[none2]}

nsr() { cut -d' ' -f1 <<<"$1"; }
runs() { cut -d' ' -f2 <<<"$1"; }
echo
echo "ns per program run (kernel bpf stats; runs in parentheses), vakt vs an empty program on the same hooks:"
printf '  %-34s %16s %16s %8s\n' "" "vakt" "empty" "ratio"
for w in RR BULK; do
	declare -n tab=NS_$w
	for d in in out; do
		if [ $d = in ]; then vid=$V_FROM eid=$E_IN name="from_pod (veth ingress)"; else
			vid=$V_TO eid=$E_OUT name="to_pod (veth egress)"; fi
		v=${tab[vakt.$vid]} e=${tab[empty.$eid]}
		printf '  %-34s %7s (%7s) %7s (%7s) %7s\n' "$w: $name" "$(nsr "$v")" "$(runs "$v")" \
			"$(nsr "$e")" "$(runs "$e")" "$(python3 -c "print('%.1fx' % ($(nsr "$v")/$(nsr "$e")))")"
	done
	unset -n tab
done
echo
echo "TCP request/response (stats off), p50 best of $REPS; added per transaction against no program:"
for l in none empty vakt nftables iptables; do
	python3 - "$l" "${P50[$l]}" "${P50[none]}" "${TPS[$l]}" "${TPS[none]}" <<'PY'
import sys
l, p, p0, t, t0 = sys.argv[1], *map(float, sys.argv[2:])
print("  %-10s p50 %7.2f us  added %+6.2f us  %8d tx/s (%5.1f%%)" % (l, p, p - p0, t, 100 * t / t0))
PY
done
python3 - "${P50[vakt]}" "${P50[none]}" "${P50[nftables]}" "${P50[iptables]}" <<'PY'
import sys
v, n, nf, ipt = map(float, sys.argv[1:])
add = lambda x: x - n
print("  vakt adds %.2f us (goal <= 0.35 us): %s" % (add(v), "met" if add(v) <= 0.35 else "NOT met"))
for name, x in (("nftables set", nf), ("iptables+conntrack", ipt)):
    if add(x) > 0:
        print("  vakt / %-18s added: %.2f" % (name, add(v) / add(x)))
    else:
        print("  %s added nothing measurable (%.2f us)" % (name, add(x)))
PY
echo "bulk throughput (iperf3, stats on for programs): none ${GBPS[none]} Gbit/s, empty ${GBPS[empty]}, vakt ${GBPS[vakt]}"
