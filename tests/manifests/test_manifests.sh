#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# manifests/ and the Dockerfile, offline:
#   1. check_manifests.py: the structural schema check of every manifest (RBAC
#      exactly get/list/watch on pods, namespaces, networkpolicies; capabilities
#      exactly BPF, NET_ADMIN, PERFMON; read-only root; probes; tolerations;
#      NODE_NAME from spec.nodeName; args are real vaktd options ...);
#   2. mutations.py: every property above, broken on purpose, is caught;
#   3. kubectl apply --dry-run=client against a discovery stub (kubectl needs
#      discovery to map kinds even for a client dry run; nothing is stored);
#   4. the Dockerfile's final stage has no shell and copies exactly what
#      `ldd build/vaktd build/vakt` lists, and a chroot holding exactly the
#      files it copies runs both binaries (needs root for chroot).
# Whatever cannot run (no kubectl, no yaml module, not root) fails.
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
HERE=tests/manifests
TMP=$(mktemp -d /tmp/vkt-manifests.XXXXXX)
STUB_PID=
cleanup() {
	if [ -n "$STUB_PID" ]; then kill "$STUB_PID" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

for b in "$BUILD/vaktd" "$BUILD/vakt"; do
	[ -x "$b" ] || { echo "FAIL: $b not built (make $b)"; exit 1; }
done
command -v kubectl >/dev/null || { echo "FAIL: kubectl not installed"; exit 1; }
python3 -c 'import yaml' 2>/dev/null || { echo "FAIL: python3 yaml module missing"; exit 1; }

"$BUILD/vaktd" --help >"$TMP/vaktd-help"
ldd "$BUILD/vaktd" >"$TMP/ldd-vaktd"
ldd "$BUILD/vakt" >"$TMP/ldd-vakt"

# 1. Schema check.
if python3 "$HERE/check_manifests.py" manifests manifests --vaktd-help "$TMP/vaktd-help" \
	--flows-header agent/flowsrv.h 2>"$TMP/err"; then
	ok "manifests pass the structural check"
else
	bad "manifests fail the structural check"; sed 's/^/     | /' "$TMP/err"
fi

# 2. The checks can fail.
if python3 "$HERE/mutations.py" manifests Dockerfile "$TMP/vaktd-help" "$TMP/ldd-vaktd" \
	"$TMP/ldd-vakt" >"$TMP/mut" 2>&1; then
	ok "every broken property is caught ($(grep -c '^ok' "$TMP/mut") mutations)"
else
	bad "a broken property went unnoticed"; grep -v '^ok' "$TMP/mut" | sed 's/^/     | /'
fi

# 3. kubectl client dry run.
python3 "$HERE/discovery_stub.py" "$TMP/port" &
STUB_PID=$!
for _ in $(seq 200); do [ -s "$TMP/port" ] && break; sleep 0.05; done
[ -s "$TMP/port" ] || { echo "FAIL: discovery stub did not start"; exit 1; }
cat >"$TMP/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: stub, cluster: {server: "http://127.0.0.1:$(cat "$TMP/port")"}}]
users: [{name: stub, user: {token: stub}}]
contexts: [{name: stub, context: {cluster: stub, user: stub}}]
current-context: stub
KC
cat >"$TMP/want-names" <<NAMES
namespace/vakt-system
serviceaccount/vakt
clusterrole.rbac.authorization.k8s.io/vakt
clusterrolebinding.rbac.authorization.k8s.io/vakt
daemonset.apps/vakt
NAMES
if KUBECONFIG=$TMP/kubeconfig HOME=$TMP kubectl apply --dry-run=client --validate=false \
	-f manifests/ -o name >"$TMP/names" 2>"$TMP/err" && cmp -s "$TMP/names" "$TMP/want-names"; then
	ok "kubectl apply --dry-run=client maps every object"
else
	bad "kubectl apply --dry-run=client"; sed 's/^/     out| /' "$TMP/names"
	sed 's/^/     err| /' "$TMP/err"
fi

# 4. The image: no shell, exactly ldd's libraries, and they suffice.
if python3 "$HERE/check_manifests.py" dockerfile Dockerfile --ldd "$TMP/ldd-vaktd" \
	"$TMP/ldd-vakt" --print-copies >"$TMP/copies" 2>"$TMP/err"; then
	ok "Dockerfile: final stage without shell, libraries = ldd"
else
	bad "Dockerfile check"; sed 's/^/     | /' "$TMP/err"
fi
if [ "$(id -u)" -ne 0 ]; then
	bad "image chroot run needs root"
else
	R=$TMP/rootfs
	while read -r src dest; do
		case $src in
		/src/build/*) from=$BUILD/${src#/src/build/} ;;
		*) from=$src ;;
		esac
		mkdir -p "$R$dest"
		cp -L "$from" "$R$dest$(basename "$src")"
	done <"$TMP/copies"
	if [ -e "$R/bin/sh" ] || [ -e "$R/usr/bin/sh" ] || [ -e "$R/bin/busybox" ]; then
		bad "rootfs has a shell"
	else
		ok "rootfs has no shell ($(find "$R" -type f | wc -l) files)"
	fi
	if chroot "$R" /usr/bin/vaktd --version >"$TMP/out" 2>&1 && grep -q '^vaktd ' "$TMP/out"; then
		ok "vaktd runs in the image root"
	else
		bad "vaktd does not run in the image root"; sed 's/^/     | /' "$TMP/out"
	fi
	if chroot "$R" /usr/bin/vakt version >"$TMP/out" 2>&1 && grep -q '^vakt ' "$TMP/out"; then
		ok "vakt runs in the image root"
	else
		bad "vakt does not run in the image root"; sed 's/^/     | /' "$TMP/out"
	fi
	set +e
	chroot "$R" /usr/bin/vakt flows >"$TMP/out" 2>&1
	rc=$?
	set -e
	if [ "$rc" -eq 2 ] && grep -q "vaktd is not running" "$TMP/out"; then
		ok "vakt flows in the image root: clear error without vaktd"
	else
		bad "vakt flows in the image root (rc=$rc)"; sed 's/^/     | /' "$TMP/out"
	fi
fi

echo "manifests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
