#!/usr/bin/env bash
# Installs what building, testing and the demo need, from Debian's packages.
# Idempotent; skips apt when everything is present. Needs root to install.
set -euo pipefail
PKGS=(build-essential clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libmnl-dev
	libjansson-dev libcurl4-openssl-dev libyaml-dev libcmocka-dev libclang-rt-14-dev
	pkg-config iproute2 iptables nftables socat iperf3 python3 clang-tidy cppcheck
	prometheus curl ca-certificates openssl ethtool python3-yaml util-linux bc nghttp2-proxy)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages: ${missing[*]} (run as root to install)" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# BPF programs and pinned maps need bpffs.
if [ "$(id -u)" -eq 0 ] && ! mountpoint -q /sys/fs/bpf; then
	mount -t bpf bpf /sys/fs/bpf
fi
