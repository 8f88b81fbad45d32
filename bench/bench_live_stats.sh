#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the datapath costs under real traffic. Topologies as in
# bench/bench_live.sh (one node namespace per configuration, set up once,
# bench/live_lib.sh): no program ("none", and "none-b" whose difference to
# "none" is the noise floor), an EMPTY TC program (returns TC_ACT_UNSPEC)
# on the four hooks vakt uses (tcx links on both veths' host sides, made
# by bench/tcx_empty.py: bpftool 7.1 cannot link tcx programs), vakt
# (vaktd enforcing a seed-like policy: default deny both ways, client
# egress to the server and server ingress from the client on the measured
# ports) twice (vakt, vakt-b: the spread between two instances of the same
# build), an nftables set and an iptables FORWARD chain with conntrack and
# equivalent rules.
# Each of ROUNDS interleaved rounds measures, in a rotated order:
#  - TCP request/response (build/bench/bench_rr rr) on every configuration
#    with kernel.bpf_stats_enabled=0 (the accounting costs two clock reads
#    per run): p50 added per transaction against "none" of the same round;
#  - with bpf_stats_enabled=1, ns per run (run_time_ns / run_cnt read with
#    bpftool) of vakt_from_pod and vakt_to_pod and of the empty programs,
#    over a request/response and a bulk (iperf3) workload: ns added by vakt
#    over the empty program in the same round.
# Before every measurement: enforcing configurations must make a denied port
# unreachable, and no stray vaktd/iperf3/bench_rr may run. Restores the
# sysctl and removes namespaces, pins and processes on any exit.
# Needs root. Runtime: about three minutes with defaults.
#   BUILD=build SECS=1 ROUNDS=7 bench/bench_live_stats.sh
# Before every measured round both vakt instances are restarted with their
# programs at a new, random JIT address (bl_redraw: the same programs cost
# different amounts at different addresses, docs/datapath.md, "Where the
# image lands"), so the medians are over addresses, not one load's draw;
# REDRAW=0 keeps the first load throughout.
# THROWAWAY=1 first sets up one more vaktd topology that is never measured
# and keeps it running, so that its programs take the addresses the first
# vaktd of a run gets (slow ones on the development VM: docs/datapath.md,
# "Where the image lands") and the measured instances land after them.
set -euo pipefail
SECS=${SECS:-1}
ROUNDS=${ROUNDS:-7}
REDRAW=${REDRAW:-1}
BL_NAME=bench_live_stats BL_TAG=bstat
# shellcheck source=live_lib.sh
. "$(dirname "$0")/live_lib.sh"
cd "$ROOT"
STATS_SAVED=$(cat /proc/sys/kernel/bpf_stats_enabled)
bl_init
stats_restore() { sysctl -qw kernel.bpf_stats_enabled="$STATS_SAVED"; }
NS_CLEANUP_HOOKS+=(stats_restore)
SAMPLES=$BL_WORK/samples
OBJ=$BL_WORK/vakt-objects
mkdir -p "$OBJ"

bl_seed_yaml >"$OBJ/bench.yaml"

# vakt-b: a second, identical vaktd in its own topology. Two instances of
# the same build measured 40-50 ns per run apart here (where the JIT put
# each program: docs/datapath.md, "Where the image lands"; each instance's
# addresses are printed), so one instance's ns/run is one draw: the pair
# shows the spread.
CFGS=(none none-b empty vakt vakt-b nftables iptables)
declare -A WANT FROM_ID TO_ID
# vakt_ids CFG: the programs of CFG's vaktd now, and where they landed.
vakt_ids() {
	FROM_ID[$1]=$(bl_link_prog "$1" vcli ingress)
	TO_ID[$1]=$(bl_link_prog "$1" vcli egress)
	bl_jit_where "$1" "${FROM_ID[$1]}" "${TO_ID[$1]}"
}
echo "bench_live_stats: ${SECS}s per run, $ROUNDS interleaved rounds, REDRAW=$REDRAW;" \
	"client on CPU $CLI_CPU, servers on CPU $SRV_CPU; bpf_stats_enabled was $STATS_SAVED"
if [ "${THROWAWAY:-0}" = 1 ]; then
	bl_topo throwaway
	bl_vaktd throwaway "$OBJ"
	echo "  a throwaway vaktd was loaded first (THROWAWAY=1)"
fi
for cfg in "${CFGS[@]}"; do
	bl_topo "$cfg"
	node=$(bl_node "$cfg")
	WANT[$cfg]=enforced
	case $cfg in
	none*) WANT[$cfg]=open ;;
	empty)
		WANT[$cfg]=open
		BL_PINS+=("/sys/fs/bpf/$node-empty")
		ids=$(bl_in_node empty python3 "$ROOT/bench/tcx_empty.py" attach "/sys/fs/bpf/$node-empty" vcli vsrv)
		read -r "FROM_ID[empty]" "TO_ID[empty]" <<<"$ids"
		;;
	vakt*)
		bl_vaktd "$cfg" "$OBJ"
		grep -q 'mode=tcx' "$BL_WORK/$cfg-vaktd.log" ||
			bl_die "vaktd did not attach with tcx: the comparison with tcx-linked empty programs would be unfair"
		pins=/sys/fs/bpf/$node/links
		for i in vcli vsrv; do
			for h in ingress egress; do
				[ -e "$pins/$(bl_ifidx "$cfg" $i)-$h" ] || bl_die "vaktd left no tcx link $pins/$(bl_ifidx "$cfg" $i)-$h"
			done
		done
		vakt_ids "$cfg"
		;;
	nftables)
		bl_in_node "$cfg" nft -f - <<-EOF
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
		;;
	iptables)
		{
			echo "*filter"
			echo ":FORWARD ACCEPT [0:0]"
			echo "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
			for p in 5201 7000; do echo "-A FORWARD -s $CLI_IP/32 -d $SRV_IP/32 -p tcp --dport $p -j ACCEPT"; done
			echo "-A FORWARD -d $SRV_IP/32 -j DROP"
			echo "COMMIT"
		} | ip netns exec "$node" iptables-restore
		;;
	esac
done

num() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
keep() { ((r == 0)) || echo "$r $*" >>"$SAMPLES"; }

# rr_run CFG: request/response with stats off.
rr_run() {
	local cfg=$1 out
	bl_expect "$cfg" "${WANT[$cfg]}"
	out=$(bl_in_cli "$cfg" "$RR" rr "$SRV_IP" 7000 "$SECS")
	[ -n "$(num p50_us <<<"$out")" ] || bl_die "$cfg: no p50 in: $out"
	keep p50_us "$cfg" "$(num p50_us <<<"$out")"
	keep rr_tps "$cfg" "$(num rr_tps <<<"$out")"
}

# stats_run CFG WORKLOAD CMD...: ns per run of CFG's programs while CMD runs
# (stats on: the caller turned them on).
stats_run() {
	local cfg=$1 w=$2 d t0 c0 t1 c1
	shift 2
	declare -A before
	bl_expect "$cfg" "${WANT[$cfg]}"
	for d in from to; do
		declare -n ids=${d^^}_ID
		before[$d]=$(bl_prog_stats "${ids[$cfg]}")
		unset -n ids
	done
	"$@" >"$BL_WORK/stats_run.out"
	for d in from to; do
		declare -n ids=${d^^}_ID
		read -r t0 c0 <<<"${before[$d]}"
		read -r t1 c1 <<<"$(bl_prog_stats "${ids[$cfg]}")"
		unset -n ids
		((c1 > c0)) || bl_die "$cfg: the ${d}_pod program did not run during $w"
		keep "${w}_${d}_pod_ns" "$cfg" "$(python3 -c "print('%.1f' % (($t1-$t0)/($c1-$c0)))")"
	done
}

bulk() {
	bl_in_cli "$1" iperf3 -c "$SRV_IP" -p 5201 -t "$SECS" -J >"$BL_WORK/iperf.json"
	keep bulk_gbps_stats_on "$1" "$(python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9))' "$BL_WORK/iperf.json")"
}

# Round 0 warms up (caches, conntrack, maps, CPU frequency); its figures are dropped.
for ((r = 0; r <= ROUNDS; r++)); do
	if ((r > 0)) && [ "$REDRAW" = 1 ]; then
		for cfg in vakt vakt-b; do
			bl_redraw "$cfg" "$OBJ"
			vakt_ids "$cfg"
		done
	fi
	sysctl -qw kernel.bpf_stats_enabled=0
	mapfile -t order < <(bl_rotate "$r" "${CFGS[@]}")
	for cfg in "${order[@]}"; do rr_run "$cfg"; done
	sysctl -qw kernel.bpf_stats_enabled=1
	mapfile -t order < <(bl_rotate "$r" empty vakt vakt-b)
	for cfg in "${order[@]}"; do
		stats_run "$cfg" rr bl_in_cli "$cfg" "$RR" rr "$SRV_IP" 7000 "$SECS"
		stats_run "$cfg" bulk bulk "$cfg"
	done
	sysctl -qw kernel.bpf_stats_enabled=0
	((r == 0)) && echo "  warm-up done" || echo "  round $r/$ROUNDS done"
done

echo
echo "TCP request/response, bpf stats off:"
grep -E ' (p50_us|rr_tps) ' "$SAMPLES" >"$SAMPLES.rr"
bl_summary "$SAMPLES.rr" none "${CFGS[@]}"
echo
echo "ns per program run (kernel bpf stats), vakt against the empty program on the same hooks:"
grep -E '_ns |bulk_gbps' "$SAMPLES" >"$SAMPLES.ns"
bl_summary "$SAMPLES.ns" empty empty vakt vakt-b
echo
python3 - "$SAMPLES" <<'PY'
import collections, statistics, sys
p50 = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    r, m, c, v = line.split()
    if m == "p50_us":
        p50[c][int(r)] = float(v)
def added(c):
    return [p50[c][r] - p50["none"][r] for r in p50[c] if r in p50["none"]]
med = lambda xs: statistics.median(xs)
nf = added("none-b")
noisy = max(abs(x) for x in nf) > 0.5
v = added("vakt")
verdict = "no verdict, noisy run" if noisy else "met" if med(v) <= 0.35 else "NOT met"
print("vakt adds %.2f us per transaction (median of %d rounds, range %.2f .. %.2f; goal <= 0.35 us): %s"
      % (med(v), len(v), min(v), max(v), verdict))
vb = added("vakt-b")
print("the second vakt instance adds %.2f us (median, range %.2f .. %.2f)" % (med(vb), min(vb), max(vb)))
print("noise floor: none-b - none = %.2f us (median, range %.2f .. %.2f)" % (med(nf), min(nf), max(nf)))
if noisy:
    print("WARNING: the machine was noisy during this run (two identical topologies differ by up to"
          " %.2f us in a round): trust the medians less, or rerun when it is idle" % max(abs(x) for x in nf))
# Best round against best round: what the classic "best of N" gives, from
# the same interleaved samples; close to the paired median on a quiet run.
best = {c: min(p50[c].values()) for c in p50}
print("best round vs best round: vakt %+.2f us, vakt-b %+.2f us, nftables %+.2f us, iptables %+.2f us,"
      " none-b %+.2f us" % tuple(best[c] - best["none"]
                               for c in ("vakt", "vakt-b", "nftables", "iptables", "none-b")))
for name in ("nftables", "iptables"):
    a = med(added(name))
    if a > 0:
        print("vakt's added p50 / %s's: %.2f (%s adds %.2f us)" % (name, med(v) / a, name, a))
    else:
        print("%s added nothing measurable (%.2f us)" % (name, a))
PY
