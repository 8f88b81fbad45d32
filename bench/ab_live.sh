#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two builds of vaktd side by side under real traffic: A/B for a datapath
# change. Not part of `make bench` (it needs two builds):
#
#   bench/ab_live.sh DIR_A DIR_B     (each DIR holds a built build/vaktd)
#
# e.g. `git worktree add /tmp/a HEAD~1 && make -C /tmp/a all` for A and
# this tree for B. Why several instances: two vaktd instances of the same
# build, each in its own topology, measured 40-50 ns per program run apart
# on the development VM (where the JIT put each instance's programs:
# docs/datapath.md, "Where the image lands"), as much as the changes being
# compared, so one instance per build would compare draws. Each build gets INSTANCES
# topologies (bench/live_lib.sh), created alternately (A B A B ...) after a
# discarded first one; every round measures every instance once, in a
# rotated order, with kernel.bpf_stats_enabled=1: ns per run of
# vakt_from_pod and vakt_to_pod on the client's veth during a TCP
# request/response run, and its p50. Reported per build: the median over
# its instances of each instance's median over rounds, and the range of
# the instance medians; then B / A.
# Needs root. Runtime with defaults: about two minutes.
#   INSTANCES=3 ROUNDS=3 SECS=1 bench/ab_live.sh /tmp/a .
set -euo pipefail
[ $# -eq 2 ] || {
	echo "usage: $0 DIR_A DIR_B (each with build/vaktd)" >&2
	exit 2
}
DIR_A=$(cd "$1" 2>/dev/null && pwd) || { echo "ab_live: $1: no such directory" >&2; exit 2; }
DIR_B=$(cd "$2" 2>/dev/null && pwd) || { echo "ab_live: $2: no such directory" >&2; exit 2; }
SECS=${SECS:-1}
ROUNDS=${ROUNDS:-3}
INSTANCES=${INSTANCES:-3}
BL_NAME=ab_live BL_TAG=ab
# shellcheck source=live_lib.sh
. "$(dirname "$0")/live_lib.sh"
cd "$ROOT"
for d in "$DIR_A" "$DIR_B"; do
	[ -x "$d/build/vaktd" ] || bl_die "$d/build/vaktd not built"
done
STATS_SAVED=$(cat /proc/sys/kernel/bpf_stats_enabled)
bl_init
stats_restore() { sysctl -qw kernel.bpf_stats_enabled="$STATS_SAVED"; }
NS_CLEANUP_HOOKS+=(stats_restore)
OBJ=$BL_WORK/objects
SAMPLES=$BL_WORK/samples
mkdir -p "$OBJ"
bl_seed_yaml >"$OBJ/bench.yaml"

declare -A FROM TO
CFGS=()
setup() {
	local cfg=$1 dir=$2
	bl_topo "$cfg"
	VAKTD=$dir/build/vaktd bl_vaktd "$cfg" "$OBJ"
	FROM[$cfg]=$(bl_link_prog "$cfg" vcli ingress)
	TO[$cfg]=$(bl_link_prog "$cfg" vcli egress)
	bl_jit_where "$cfg" "${FROM[$cfg]}" "${TO[$cfg]}"
}
setup first "$DIR_A"
for ((i = 1; i <= INSTANCES; i++)); do
	setup "a$i" "$DIR_A"
	setup "b$i" "$DIR_B"
	CFGS+=("a$i" "b$i")
done
echo "ab_live: A=$DIR_A B=$DIR_B; $INSTANCES instances each, $ROUNDS rounds of ${SECS}s"

sysctl -qw kernel.bpf_stats_enabled=1
for ((r = 0; r <= ROUNDS; r++)); do
	mapfile -t order < <(bl_rotate "$r" "${CFGS[@]}")
	for c in "${order[@]}"; do
		bl_expect "$c" enforced
		read -r f0 fc0 <<<"$(bl_prog_stats "${FROM[$c]}")"
		read -r t0 tc0 <<<"$(bl_prog_stats "${TO[$c]}")"
		out=$(bl_in_cli "$c" "$RR" rr "$SRV_IP" 7000 "$SECS")
		read -r f1 fc1 <<<"$(bl_prog_stats "${FROM[$c]}")"
		read -r t1 tc1 <<<"$(bl_prog_stats "${TO[$c]}")"
		((fc1 > fc0 && tc1 > tc0)) || bl_die "$c: the programs did not run"
		((r == 0)) && continue
		{
			echo "$c from_pod_ns $(((f1 - f0) / (fc1 - fc0)))"
			echo "$c to_pod_ns $(((t1 - t0) / (tc1 - tc0)))"
			echo "$c p50_us $(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<<"$out")"
		} >>"$SAMPLES"
	done
done
sysctl -qw kernel.bpf_stats_enabled="$STATS_SAVED"

python3 - "$SAMPLES" <<'PY'
import collections, statistics, sys
per = collections.defaultdict(list)  # (build, instance, metric) -> values
for line in open(sys.argv[1]):
    c, m, v = line.split()
    per[(c[0], c, m)].append(float(v))
for m in ("from_pod_ns", "to_pod_ns", "p50_us"):
    med = {}
    for b in "ab":
        inst = [statistics.median(v) for (bb, c, mm), v in sorted(per.items()) if bb == b and mm == m]
        med[b] = statistics.median(inst)
        print("%-11s %s: %8.2f  (instances %s)" % (m, b.upper(), med[b], " ".join("%.2f" % x for x in inst)))
    print("%-11s B/A: %.3f" % (m, med["b"] / med["a"]))
PY
