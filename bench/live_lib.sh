# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Shared by bench/bench_live.sh and bench/bench_live_stats.sh: one isolated
# topology per configuration, measured in interleaved rounds.
#
# Why this shape: on a small shared VM the same figure swings by an order of
# magnitude between runs minutes apart, so one figure per configuration
# measured in sequence compares machine moods, not configurations. Instead
# every configuration gets its own node namespace (with its own client and
# server pods on veth, its own vaktd or ruleset) that stays set up for the
# whole run; a round measures every configuration once, back to back, in a
# rotated order, and each figure is compared with the no-program figure of
# the same round. Switching configuration costs nothing, and conntrack or
# programs of one configuration cannot leak into another (each netns has its
# own netfilter hooks and its own veths).
#
# Source after setting BL_NAME (message prefix) and BL_TAG (name tag); then:
#   bl_init                      namespaces trap, stray-process check, work dir
#   bl_topo CFG                  node CFG's namespaces, pods, servers
#   bl_vaktd CFG OBJDIR          vaktd in CFG's node (killed on any exit)
#   bl_redraw CFG OBJDIR         that vaktd restarted, its programs at a new address
#   bl_expect CFG open|enforced  before a measurement: proves the state
#   bl_in_cli CFG CMD...         CMD in CFG's client pod, pinned to CLI_CPU
#   bl_summary FILE              paired per-round statistics of FILE's samples
#   bl_pods_yaml                 manifests of namespace bench, its client and
#                                server pods (the policies are each script's)
#   bl_seed_yaml                 the pods and the seed scenario's policies
#   bl_prog_stats ID             "run_time_ns run_cnt" of program ID (BPF stats)
#   bl_ifidx CFG IFNAME          IFNAME's index in CFG's node namespace
#   bl_link_prog CFG IFNAME HOOK the program behind vaktd's pinned tcx link
#   bl_jit_where CFG FROM TO     where the JIT put programs FROM and TO

: "${BL_NAME:?}" "${BL_TAG:?}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
VAKTD=$BUILD/vaktd
RR=$BUILD/bench/bench_rr
# Client and server pinned to one CPU: the sender's CPU runs the whole veth
# path (veth xmit hands the packet to the peer's backlog on the same CPU),
# so the transaction never waits for a cross-CPU wakeup. Measured here: on
# two CPUs the request/response p50 is ~50 us, mostly the VM's wakeup IPI,
# which hides a sub-microsecond datapath cost and swings by +-10 us between
# rounds; on one CPU it is ~8 us and two no-program topologies agree within
# a few tenths of a microsecond. Unpinned, the scheduler alternates between
# both regimes from one run to the next (the 8 us vs 100 us swings).
CLI_CPU=${CLI_CPU:-1}
SRV_CPU=${SRV_CPU:-1}
# A SYN through veth comes back in microseconds; a denied port is declared
# unreachable after this long.
PROBE_MS=${PROBE_MS:-150}
# shellcheck disable=SC2034 # used by the scripts that source this file
CLI_IP=10.244.1.10
SRV_IP=10.244.1.20
MEASURED_PORTS="5201 7000 7001"
DENIED_PORT=7002

bl_die() {
	echo "$BL_NAME: $*" >&2
	exit 1
}

for f in "$VAKTD" "$RR"; do
	[ -x "$f" ] || bl_die "$f not built (make bench)"
done
for t in iperf3 iptables-restore nft bpftool python3 nsenter setpriv taskset curl; do
	command -v "$t" >/dev/null || bl_die "missing $t (tools/install-deps.sh)"
done

NETNS_PREFIX=vkt-$BL_TAG-$$
# shellcheck source=../tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"

declare -a BL_OURS=()     # pids of the processes this run started
declare -A BL_VAKTD=()    # cfg -> vaktd pid
declare -a BL_PINS=()     # bpffs directories to remove

# Processes left by an earlier run (a killed script, an orphaned vaktd) share
# the CPUs and, for vaktd, may still hold programs on veths: figures taken
# next to them mean nothing.
bl_stray_check() {
	local name pid ours strays=""
	for name in vaktd iperf3 bench_rr; do
		for pid in $(pgrep -x "$name" || true); do
			ours=0
			for p in "${BL_OURS[@]}"; do [ "$p" = "$pid" ] && ours=1 && break; done
			[ $ours = 1 ] || strays+=" $pid"
		done
	done
	if [ -n "$strays" ]; then
		echo "$BL_NAME: stray processes from another run are alive; stop them first:" >&2
		ps -o pid,ppid,etime,args -p "${strays# }" >&2 || true
		exit 1
	fi
}

# vaktd gets TERM, then KILL after 5 s: a vaktd that hangs on exit must not
# hang the cleanup (nor survive it).
bl_stop_vaktd() {
	local cfg=$1 pid=${BL_VAKTD[$1]:-} i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "BL_VAKTD[$cfg]"
}

bl_cleanup() {
	local cfg d
	for cfg in "${!BL_VAKTD[@]}"; do bl_stop_vaktd "$cfg"; done
	for d in "${BL_PINS[@]}"; do rm -rf "$d"; done
	[ -n "${BL_WORK:-}" ] && rm -rf "$BL_WORK"
	return 0
}

bl_init() {
	ns_init
	# lib.sh's traps turn INT and TERM into an exit, and the EXIT trap runs
	# the cleanup hooks; HUP (a closed terminal) needs the same.
	trap 'exit 129' HUP
	NS_CLEANUP_HOOKS+=(bl_cleanup)
	BL_WORK=$(mktemp -d "/tmp/$NETNS_PREFIX.XXXXXX")
	bl_stray_check
}

bl_node() { echo "$NETNS_PREFIX-$1"; }
bl_in_node() {
	local cfg=$1
	shift
	nsenter --net="/run/netns/$(bl_node "$cfg")" "$@"
}
bl_in_cli() {
	local cfg=$1
	shift
	ip netns exec "$(bl_node "$cfg")-c" taskset -c "$CLI_CPU" "$@"
}

# bl_spawn LOG SIG CMD...: a background process killed at cleanup, and sent
# SIG by the kernel when this shell dies without running its traps
# (SIGKILL): the death signal survives the exec chain setpriv -> ip netns
# exec -> CMD, which keeps one pid throughout (none of them forks).
bl_spawn() {
	local logf=$1 sig=$2
	shift 2
	ns_spawn "$logf" setpriv --pdeathsig "$sig" "$@"
	BL_OURS+=("$NS_LAST_PID")
}

# bl_topo CFG: node namespace CFG with a client and a server pod (the same
# addresses in every topology, so rulesets are identical), and the servers.
bl_topo() {
	local cfg=$1 node
	node=$(bl_node "$cfg")
	ns_node "$node"
	ns_pod "$node" "$node-c" "$CLI_IP" vcli
	ns_pod "$node" "$node-s" "$SRV_IP" vsrv
	bl_spawn "$BL_WORK/$cfg-iperf.log" KILL ip netns exec "$node-s" taskset -c "$SRV_CPU" iperf3 -s -p 5201
	bl_spawn "$BL_WORK/$cfg-rr.log" KILL ip netns exec "$node-s" taskset -c "$SRV_CPU" "$RR" server 7000
	# listening but allowed by no configuration: proves that one enforces
	bl_spawn "$BL_WORK/$cfg-rr2.log" KILL ip netns exec "$node-s" taskset -c "$SRV_CPU" "$RR" server $DENIED_PORT
}

# bl_vaktd CFG OBJDIR: vaktd enforcing OBJDIR's objects in CFG's node, ready.
bl_vaktd() {
	local cfg=$1 obj=$2 node pins
	node=$(bl_node "$cfg")
	pins=/sys/fs/bpf/$node
	BL_PINS+=("$pins")
	# vaktd stays pinned to no CPU: it is idle while measuring. Orphaned, it
	# gets TERM, so that --cleanup still detaches and unpins; one that
	# hangs anyway is caught by the next run's stray check.
	bl_spawn "$BL_WORK/$cfg-vaktd.log" TERM nsenter --net="/run/netns/$node" "$VAKTD" \
		--objects "$obj" --node node-1 --bpffs "$pins" --metrics-addr 127.0.0.1:9964 \
		--flows-socket "$BL_WORK/$cfg-flows.sock" --cleanup
	BL_VAKTD[$cfg]=$NS_LAST_PID
	if ! ns_wait_http "$node" http://127.0.0.1:9964/readyz 60; then
		tail "$BL_WORK/$cfg-vaktd.log" >&2
		bl_die "vaktd for $cfg never became ready"
	fi
}

# bl_redraw CFG OBJDIR: CFG's vaktd restarted with its programs at a new,
# random address. Identical programs cost measurably different amounts at
# different JIT addresses (docs/datapath.md, "Where the image lands"), so
# a figure from one load is one draw; redrawn before every round, a
# median over rounds is a median over addresses. The restart is the one a
# node does: SIGKILL (programs stay attached through the pinned links),
# then a vaktd that adopts the pinned maps and moves the links to its own
# programs, loaded while 0-127 do-nothing fillers of random sizes (64 B to
# 4 KiB each) hold a random part of the free space in the JIT's executable
# memory (bench/jit_place.py fill: why many small ones).
bl_redraw() {
	local cfg=$1 obj=$2 pid=${BL_VAKTD[$1]:?} fillers
	fillers=/sys/fs/bpf/$(bl_node "$cfg")-fillers
	BL_PINS+=("$fillers")
	python3 "$ROOT/bench/jit_place.py" fill "$fillers" $((RANDOM % 128)) "$RANDOM"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "BL_VAKTD[$cfg]"
	bl_vaktd "$cfg" "$obj"
	rm -rf "$fillers"
}

# bl_probe CFG PORT MS: 0 if CFG's client can connect to PORT.
bl_probe() { bl_in_cli "$1" "$RR" probe "$SRV_IP" "$2" "$3" >/dev/null; }

# bl_expect CFG open|enforced: the measured port answers, and the denied one
# answers too (open: no configuration) or not (enforced); no stray process.
bl_expect() {
	local cfg=$1 want=$2
	bl_stray_check
	[ -z "${BL_VAKTD[$cfg]:-}" ] || kill -0 "${BL_VAKTD[$cfg]}" 2>/dev/null ||
		bl_die "vaktd of $cfg died (log: $(tail -3 "$BL_WORK/$cfg-vaktd.log"))"
	bl_probe "$cfg" 7000 2000 || bl_die "$cfg: measured port 7000 unreachable"
	if [ "$want" = open ]; then
		bl_probe "$cfg" $DENIED_PORT 2000 || bl_die "$cfg: port $DENIED_PORT unreachable without any program: the setup is broken"
	elif bl_probe "$cfg" $DENIED_PORT "$PROBE_MS"; then
		bl_die "$cfg does not enforce (port $DENIED_PORT reachable)"
	fi
}

# bl_rotate ROUND CFG...: the configurations in the order of round ROUND
# (rotated each round, so that no configuration always runs first, or
# always right after another one).
bl_rotate() {
	local r=$1
	shift
	local -a c=("$@")
	local n=${#c[@]} i
	for ((i = 0; i < n; i++)); do echo "${c[$(((i + r) % n))]}"; done
}

# bl_summary FILE BASE CFG...: FILE holds "round metric cfg value" samples; prints,
# per metric and configuration, the median and range of the raw values and
# of the paired comparison with BASE in the same round (ratio for rates,
# difference for times: metrics whose name ends in _us or _ns). BL_PAIR
# names what the first column counts (default "round").
bl_summary() {
	BL_PAIR=${BL_PAIR:-round} python3 - "$@" <<'PY'
import collections, os, statistics, sys
pair = os.environ["BL_PAIR"]
path, base, cfgs = sys.argv[1], sys.argv[2], sys.argv[3:]
samples = collections.defaultdict(dict)   # (metric, cfg) -> round -> value
order_m = []
for line in open(path):
    r, m, c, v = line.split()
    samples[(m, c)][int(r)] = float(v)
    if m not in order_m: order_m.append(m)
order_c = cfgs
def rng(xs, fmt):
    return (fmt % statistics.median(xs)) + "  [" + (fmt % min(xs)) + " .. " + (fmt % max(xs)) + "]"
for m in order_m:
    lat = m.endswith(("_us", "_ns"))
    unit = m.rsplit("_", 1)[-1]
    unit = {"gbps": "Gbit/s", "tps": "tx/s", "cps": "conn/s", "on": "Gbit/s"}.get(unit, unit)
    what = ("added %s vs %s (same %s)" % (unit, base, pair)) if lat else "%% of %s (same %s)" % (base, pair)
    print("%s (%s): median [min .. max] over %s; %s" % (m, unit, pair + ("es" if pair.endswith("s") else "s"), what))
    b = samples.get((m, base), {})
    for c in order_c:
        s = samples.get((m, c))
        if not s: continue
        raw = rng(list(s.values()), "%.2f" if lat or unit == "Gbit/s" else "%.0f")
        line = "  %-15s %-30s" % (c, raw)
        if c != base:
            paired = [s[r] - b[r] if lat else 100 * s[r] / b[r] for r in s if r in b and b[r]]
            if paired:
                line += ("  %s" % rng(paired, "%+.2f" if lat else "%.1f%%"))
        print(line)
PY
}

bl_pods_yaml() {
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
	EOF
}

# The seed scenario's shape: default deny both ways, one client->server allow
# on each side, for the ports measured (iperf3 and bench_rr).
bl_seed_yaml() {
	bl_pods_yaml
	cat <<-EOF
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
}

# bl_prog_stats ID: "run_time_ns run_cnt" of program ID, as the kernel's BPF
# stats (kernel.bpf_stats_enabled) have them.
bl_prog_stats() {
	bpftool prog show id "$1" -j | python3 -c \
		'import json,sys; j=json.load(sys.stdin); print(j.get("run_time_ns", 0), j.get("run_cnt", 0))'
}

# bl_jit_where CFG FROM_ID TO_ID: where the JIT put CFG's vakt_from_pod
# and vakt_to_pod (address and length of each main image). Printed with
# the figures: the same program measures differently at different
# addresses (docs/datapath.md, "Where the image lands").
bl_jit_where() {
	local f t
	read -r _ f _ <<<"$(python3 "$ROOT/bench/jit_place.py" where "$2")"
	read -r _ t _ <<<"$(python3 "$ROOT/bench/jit_place.py" where "$3")"
	echo "  $1: vakt_from_pod JITed at $f, vakt_to_pod at $t"
}

bl_ifidx() { ip -n "$(bl_node "$1")" -o link show "$2" | cut -d: -f1; }

# bl_link_prog CFG IFNAME HOOK: the id of the program behind the tcx link
# vaktd pinned for IFNAME's HOOK (ingress or egress) in CFG's node; fails
# when there is no such link.
bl_link_prog() {
	local pin
	pin=/sys/fs/bpf/$(bl_node "$1")/links/$(bl_ifidx "$1" "$2")-$3
	bpftool link show pinned "$pin" -j |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])'
}
