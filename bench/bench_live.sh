#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Live datapath over veth between network namespaces: no program (the
# limit), vakt (vaktd enforcing a server ingress policy of N port entries),
# and an iptables FORWARD chain with N equivalent rules (conntrack
# ESTABLISHED first, as every real ruleset does), for N = 10, 1,000 and
# 10,000; plus a second no-program topology ("none-b") whose spread against
# "none" is the noise floor of the comparison. Figures: TCP throughput
# (iperf3), TCP request/response rate and p50 (bench_rr rr), new connections
# per second (bench_rr crr).
#
# Every configuration has its own topology, set up once (bench/live_lib.sh);
# ROUNDS rounds measure each figure of every configuration once, in a
# rotated order, after checking that the configuration really enforces (a
# denied port is unreachable) and that no stray process runs. Reported per
# configuration: median and range of the raw figures, and of the ratio to
# the no-program figure of the same round. Also: how long a new veth waits
# for its programs. Before every measured round each vaktd is restarted
# with its programs at a new, random JIT address (bl_redraw; REDRAW=0
# keeps the first load): the same programs cost different amounts at
# different addresses (docs/datapath.md, "Where the image lands"), so the
# medians are over addresses. Request/response and new connections are
# measured in SLICES short passes per round (SLICE_SECS each) over all the
# configurations, each pass's figures paired with "none" of the same pass,
# as in bench_live_stats.sh (this VM jumps between performance regimes
# within seconds, docs/benchmarks.md); their medians get bootstrap 95 %
# intervals (bench/paired.py) and the goals a verdict. Needs root.
# Runtime: about nine minutes.
#   BUILD=build SECS=2 ROUNDS=7 SLICES=8 SLICE_SECS=0.25 SIZES="10 1000 10000" bench/bench_live.sh
set -euo pipefail
SECS=${SECS:-2}
ROUNDS=${ROUNDS:-7}
SLICES=${SLICES:-8}
SLICE_SECS=${SLICE_SECS:-0.25}
SIZES=${SIZES:-"10 1000 10000"}
REDRAW=${REDRAW:-1}
BL_NAME=bench_live BL_TAG=blive
# shellcheck source=live_lib.sh
. "$(dirname "$0")/live_lib.sh"
cd "$ROOT"
bl_init
SAMPLES=$BL_WORK/samples

# ports N: the N ports of the equivalent rule sets; the measured ones last.
filler_ports() { seq 20000 $((20000 + $1 - 4)); }

write_manifests() {
	local n=$1 dir=$2
	mkdir -p "$dir"
	{
		bl_pods_yaml
		cat <<-EOF
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
		for p in $MEASURED_PORTS; do echo "    - {protocol: TCP, port: $p}"; done
	} >"$dir/bench.yaml"
}

iptables_rules() {
	local cfg=$1 n=$2
	{
		echo "*filter"
		echo ":FORWARD ACCEPT [0:0]"
		echo "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
		filler_ports "$n" | sed "s/.*/-A FORWARD -s $CLI_IP\/32 -d $SRV_IP\/32 -p tcp --dport & -j ACCEPT/"
		for p in $MEASURED_PORTS; do
			echo "-A FORWARD -s $CLI_IP/32 -d $SRV_IP/32 -p tcp --dport $p -j ACCEPT"
		done
		echo "-A FORWARD -d $SRV_IP/32 -j DROP"
		echo "COMMIT"
	} | ip netns exec "$(bl_node "$cfg")" iptables-restore
}

CFGS=(none none-b)
for n in $SIZES; do CFGS+=("vakt-$n" "iptables-$n"); done
declare -A WANT
echo "bench_live: ${SECS}s throughput runs, $ROUNDS interleaved rounds with $SLICES passes of ${SLICE_SECS}s" \
	"for request/response and new connections, REDRAW=$REDRAW, sizes: $SIZES;" \
	"client on CPU $CLI_CPU, servers on CPU $SRV_CPU"
for cfg in "${CFGS[@]}"; do
	bl_topo "$cfg"
	case $cfg in
	none*) WANT[$cfg]=open ;;
	vakt-*)
		write_manifests "${cfg#vakt-}" "$BL_WORK/$cfg-objects"
		bl_vaktd "$cfg" "$BL_WORK/$cfg-objects"
		WANT[$cfg]=enforced
		;;
	iptables-*)
		iptables_rules "$cfg" "${cfg#iptables-}"
		WANT[$cfg]=enforced
		;;
	esac
done
for cfg in "${CFGS[@]}"; do
	[[ $cfg != vakt-* ]] || grep -q 'mode=tcx' "$BL_WORK/$cfg-vaktd.log" ||
		echo "bench_live: note: vaktd of $cfg did not attach with tcx" >&2
done

num() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
# measure KEY METRIC CFG: one figure, appended to SAMPLES (throughput, keyed
# by round) or SAMPLES.pass (the rest, keyed by pass); round 0 = warm-up,
# not kept. Throughput runs first in a round and checks each configuration
# (bl_expect); the passes that follow trust that check.
measure() {
	local k=$1 m=$2 cfg=$3 out v f=$SAMPLES.pass
	case $m in
	gbps)
		bl_expect "$cfg" "${WANT[$cfg]}"
		out=$(bl_in_cli "$cfg" iperf3 -c "$SRV_IP" -p 5201 -t "$SECS" -J)
		v=$(python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' <<<"$out")
		f=$SAMPLES
		;;
	rr)
		out=$(bl_in_cli "$cfg" "$RR" rr "$SRV_IP" 7000 "$SLICE_SECS")
		v=$(num rr_tps <<<"$out")
		((r == 0)) || echo "$k p50_us $cfg $(num p50_us <<<"$out")" >>"$f"
		m=rr_tps
		;;
	crr)
		out=$(bl_in_cli "$cfg" "$RR" crr "$SRV_IP" 7000 "$SLICE_SECS")
		v=$(num crr_cps <<<"$out")
		m=crr_cps
		;;
	esac
	[ -n "$v" ] || bl_die "$cfg: no $m figure in: $out"
	((r == 0)) || echo "$k $m $cfg $v" >>"$f"
}

# Round 0 warms caches, conntrack tables, the programs' maps and the CPU
# frequency up; its figures are dropped.
for ((r = 0; r <= ROUNDS; r++)); do
	for cfg in "${CFGS[@]}"; do
		[[ $cfg == vakt-* ]] || continue
		((r > 0)) && [ "$REDRAW" = 1 ] && bl_redraw "$cfg" "$BL_WORK/$cfg-objects"
		bl_jit_where "$cfg" "$(bl_link_prog "$cfg" vcli ingress)" "$(bl_link_prog "$cfg" vcli egress)"
	done
	mapfile -t order < <(bl_rotate "$r" "${CFGS[@]}")
	for cfg in "${order[@]}"; do measure "$r" gbps "$cfg"; done
	for ((pass = 1; pass <= SLICES; pass++)); do
		mapfile -t order < <(bl_rotate $((r + pass)) "${CFGS[@]}")
		for m in rr crr; do
			for cfg in "${order[@]}"; do measure $((r * 1000 + pass)) "$m" "$cfg"; done
		done
	done
	((r == 0)) && echo "  warm-up done" || echo "  round $r/$ROUNDS done"
done

# A new veth: time from `ip link add` until vaktd logged the attachment
# (its log timestamps and EPOCHREALTIME are the same clock). The peer is
# created in the client pod's namespace, as a CNI plugin leaves it: with
# both ends in the node namespace vaktd would attach to both, and the
# figure would include the peer's attachment whenever its event came first.
acfg=vakt-${SIZES%% *}
anode=$(bl_node "$acfg")
attach_ms=()
for i in 1 2 3 4 5; do
	t0=$EPOCHREALTIME
	ip -n "$anode" link add "vnew$i" type veth peer name "vpeer$i" netns "$anode-c"
	line=
	for _ in $(seq 200); do
		line=$(grep -m1 "msg=\"attached\" ifname=vnew$i " "$BL_WORK/$acfg-vaktd.log" || true)
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
	ip -n "$anode" link del "vnew$i"
done

# vaktd --cleanup must leave the veth open again when it exits.
bl_stop_vaktd "$acfg"
bl_expect "$acfg" open

echo
bl_summary "$SAMPLES" none "${CFGS[@]}"
BL_PAIR=pass bl_summary "$SAMPLES.pass" none "${CFGS[@]}"
echo
vakts=() vs=()
for n in $SIZES; do
	vakts+=("vakt-$n")
	vs+=(--vs "vakt-$n:iptables-$n")
done
python3 "$ROOT/bench/paired.py" "$SAMPLES.pass" rr_tps none "${vakts[@]}" --goal-min 95 --noise none-b "${vs[@]}"
python3 "$ROOT/bench/paired.py" "$SAMPLES.pass" crr_cps none "${vakts[@]}" --vs none-b:none "${vs[@]}"
python3 "$ROOT/bench/paired.py" "$SAMPLES.pass" p50_us none "${vakts[@]}" --vs none-b:none "${vs[@]}"
echo "new veth -> programs attached (ms, from vaktd's log; 5 trials): ${attach_ms[*]}"
