# SPDX-License-Identifier: Apache-2.0
# Bash helpers for network-namespace setups: used by tools/demo.sh and
# bench/bench_live.sh (the end-to-end tests use the Python twin, e2elib.py,
# with the same topology). Source it, set NETNS_PREFIX, then:
#
#   ns_init                       trap that cleans everything up on exit,
#                                 Ctrl-C or failure
#   ns_node NODE [routed|bridged] node namespace (ip_forward on)
#   ns_pod NODE POD IP HOSTIF     pod namespace POD, eth0 = IP/32, veth to
#                                 the node (host side HOSTIF), routed ptp or
#                                 a port of vbr0 (bridged)
#   ns_spawn LOG CMD...           background process killed at cleanup
#   ns_bpffs DIR                  a private bpffs mounted at DIR (unmounted
#                                 and removed at cleanup)
#   daemonset_caps                CAPS=(...) the capabilities the DaemonSet
#                                 adds, lowercase; fails without any
#
# Every namespace name starts with $NETNS_PREFIX, every process started
# with ns_spawn is killed by its pid, and the cleanup runs once.

: "${NETNS_PREFIX:?set NETNS_PREFIX before sourcing lib.sh}"
NS_GATEWAY=169.254.1.1
NS_LIST=()
NS_PIDS=()
NS_CLEANUP_HOOKS=()
NS_CLEANED=0

ns_cleanup() {
	[ "$NS_CLEANED" = 1 ] && return
	NS_CLEANED=1
	local h p n
	for h in "${NS_CLEANUP_HOOKS[@]}"; do $h || true; done
	for p in "${NS_PIDS[@]}"; do
		kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
	done
	for p in "${NS_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for ((n = ${#NS_LIST[@]} - 1; n >= 0; n--)); do
		ip netns del "${NS_LIST[$n]}" 2>/dev/null || true
	done
}

ns_init() {
	trap ns_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, BPF)" >&2; exit 1; }
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
}

ns_add() {
	ip netns add "$1"
	NS_LIST+=("$1")
	ip -n "$1" link set lo up
}

ns_node() {
	local node=$1 mode=${2:-routed}
	ns_add "$node"
	ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0
	if [ "$mode" = bridged ]; then
		ip -n "$node" link add vbr0 type bridge
		ip -n "$node" addr add "$NS_GATEWAY/32" dev vbr0
		ip -n "$node" link set vbr0 up
	fi
}

ns_pod() {
	local node=$1 pod=$2 ip=$3 hostif=$4 mode=${5:-routed}
	ns_add "$pod"
	ip -n "$node" link add "$hostif" type veth peer name eth0 netns "$pod"
	ip -n "$pod" addr add "$ip/32" dev eth0
	ip -n "$pod" link set eth0 up
	ip -n "$pod" route add "$NS_GATEWAY" dev eth0 scope link
	if [ "$mode" = bridged ]; then
		ip -n "$node" link set "$hostif" master vbr0
		ip -n "$pod" route add 10.0.0.0/8 dev eth0 scope link
		ip -n "$node" route replace "$ip/32" dev vbr0
	else
		ip -n "$node" addr add "$NS_GATEWAY/32" dev "$hostif"
	fi
	ip -n "$node" link set "$hostif" up
	[ "$mode" = bridged ] || ip -n "$node" route add "$ip/32" dev "$hostif"
	ip -n "$pod" route add default via "$NS_GATEWAY" dev eth0 onlink
}

# ns_spawn LOG CMD...: runs CMD in its own process group, output to LOG.
ns_spawn() {
	local logf=$1
	shift
	setsid "$@" >"$logf" 2>&1 &
	NS_PIDS+=("$!")
	NS_LAST_PID=$!
}

# ns_wait_http NODE URL [SECONDS]: waits for a 200 from URL inside NODE.
ns_wait_http() {
	local node=$1 url=$2 secs=${3:-15} i
	for ((i = 0; i < secs * 10; i++)); do
		if [ "$(nsenter --net="/run/netns/$node" curl -s -o /dev/null -m 1 -w '%{http_code}' "$url")" = 200 ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

NS_BPFFS=()
ns_bpffs_cleanup() {
	local d
	for d in "${NS_BPFFS[@]}"; do
		umount "$d" 2>/dev/null || true
		rmdir "$d" 2>/dev/null || true
	done
}

ns_bpffs() {
	mkdir -p "$1"
	mount -t bpf bpf "$1"
	[ ${#NS_BPFFS[@]} -eq 0 ] && NS_CLEANUP_HOOKS+=(ns_bpffs_cleanup)
	NS_BPFFS+=("$1")
}

# The capability set vaktd runs with in a cluster, read from the manifest
# itself so the tests prove what is deployed.
daemonset_caps() {
	mapfile -t CAPS < <(python3 - <<'PY'
import yaml
for d in yaml.safe_load_all(open("manifests/20-daemonset.yaml")):
    if d and d["kind"] == "DaemonSet":
        for c in d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"]:
            print(c.lower())
PY
)
	[ ${#CAPS[@]} -gt 0 ] || { echo "FAIL: no capabilities found in the DaemonSet"; return 1; }
}

# ns_seed_node TAG: the setting of the tests that run vaktd as the DaemonSet
# would: node namespace $NODE ($NETNS_PREFIX-n) routing to the seed's three
# pods (frontend .10, backend .20, intruder .30; host veths vk${TAG}fe/be/in),
# a work directory $WORK and a private bpffs $BPFFS inside it, both removed
# on exit (the bpffs unmounted first).
ns_seed_node() {
	local tag=$1
	NODE=$NETNS_PREFIX-n
	WORK=$(mktemp -d "/tmp/$NETNS_PREFIX.XXXXXX")
	BPFFS=$WORK/bpffs
	ns_bpffs "$BPFFS"
	# Registered after the bpffs hook: the mount is gone before its parent.
	NS_CLEANUP_HOOKS+=(ns_seed_node_cleanup)
	ns_node "$NODE"
	ns_pod "$NODE" "$NETNS_PREFIX-fe" 10.244.1.10 "vk${tag}fe"
	ns_pod "$NODE" "$NETNS_PREFIX-be" 10.244.1.20 "vk${tag}be"
	ns_pod "$NODE" "$NETNS_PREFIX-in" 10.244.1.30 "vk${tag}in"
}
ns_seed_node_cleanup() { rm -rf "$WORK"; }
