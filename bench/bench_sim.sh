#!/usr/bin/env bash
# Wall time of a whole `vakt sim --matrix` process (exec, load, compile, 81
# pairs per table, print) on the upstream e2e model: namespaces x, y, z with
# pods a, b, c, ports 80 and 81 on TCP, UDP and SCTP (6 tables).
# Best of RUNS runs (this machine is noisy; the best run is the cost of the
# work, the others add scheduling noise). Target (issue 2): under 50 ms.
#   BUILD=build RUNS=30 bench/bench_sim.sh     (GENERATE=1: always the generated cluster)
set -euo pipefail
BUILD=${BUILD:-build}
RUNS=${RUNS:-30}
TARGET_MS=50
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VAKT=$BUILD/vakt
[ -x "$VAKT" ] || { echo "bench_sim: $VAKT not built" >&2; exit 1; }
TMP=$(mktemp -d /tmp/vkt-sim-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The scenario: tests/netpol's base cluster and the policy set with the most
# policies, else a generated equivalent (same pods, a default-deny and an
# allow-from-namespace policy) so the bench runs before tests/netpol exists.
pick_scenario() {
	local best="" n max=-1 f
	for f in tests/netpol/scenarios/*/policies.yaml; do
		[ -f "$f" ] || continue
		n=$(grep -c '^kind: NetworkPolicy' "$f" || true)
		if [ "$n" -gt "$max" ]; then max=$n; best=$f; fi
	done
	echo "$best"
}

generate() {
	local ns p i=0 proto port
	for ns in x y z; do
		printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: "%s", labels: {ns: "%s"}}\n---\n' "$ns" "$ns"
	done
	for ns in x y z; do
		for p in a b c; do
			i=$((i + 1))
			printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: "%s", labels: {pod: %s}}\n' "$p" "$ns" "$p"
			printf 'spec:\n  nodeName: node-1\n  containers:\n'
			for port in 80 81; do
				for proto in TCP UDP SCTP; do
					local lp=${proto,,}
					printf '  - name: cont-%s-%s\n    ports: [{name: serve-%s-%s, containerPort: %s, protocol: %s}]\n' \
						"$port" "$lp" "$port" "$lp" "$port" "$proto"
				done
			done
			printf 'status: {podIP: 10.9.0.%d}\n---\n' "$i"
		done
	done
	cat <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: serve-80-tcp}, {port: 81, protocol: UDP}]}]
YAML
}

if [ "${GENERATE:-0}" != 1 ] && [ -f tests/netpol/base.yaml ] && [ -n "$(pick_scenario)" ]; then
	files=(-f tests/netpol/base.yaml -f "$(pick_scenario)")
	what="tests/netpol/base.yaml + $(pick_scenario)"
else
	generate >"$TMP/cluster.yaml"
	files=(-f "$TMP/cluster.yaml")
	what="generated 9-pod cluster"
fi
args=(sim "${files[@]}" --matrix --port 80 --port 81 --protocol TCP --protocol UDP --protocol SCTP)

# One untimed run checks that the command works and warms the page cache.
"$VAKT" "${args[@]}" >"$TMP/out"
tables=$(grep -c '^# port' "$TMP/out")
pods=$(sed -n "3,\$p" "$TMP/out" | sed "/^\$/q" | grep -c .)

times=()
for ((r = 0; r < RUNS; r++)); do
	t0=$EPOCHREALTIME
	"$VAKT" "${args[@]}" >/dev/null
	t1=$EPOCHREALTIME
	times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
done
read -r best median < <(printf '%s\n' "${times[@]}" | sort -n |
	awk '{ v[NR] = $1 } END { printf "%s %s\n", v[1], v[int((NR + 1) / 2)] }')

echo "bench_sim: scenario: $what ($pods pods, $tables tables)"
echo "bench_sim: vakt sim --matrix, whole process: best $best ms, median $median ms over $RUNS runs (target < $TARGET_MS ms)"
awk -v b="$best" -v t="$TARGET_MS" 'BEGIN { exit !(b < t) }' || { echo "bench_sim: over target" >&2; exit 1; }
