#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's main-job command works: tools/demo.sh (make demo) builds its
# namespaces, enforces examples/ with vaktd, sees every connection behave as
# the policies say, and leaves no namespace or pinned map behind.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "FAIL: needs root" >&2; exit 1; }
out=$(tools/demo.sh 2>&1) || { echo "$out"; echo "FAIL: demo exited non-zero" >&2; exit 1; }
echo "$out"
grep -q "every connection behaved as the policies say" <<<"$out" || { echo "FAIL: no success line" >&2; exit 1; }
grep -q "production/backend" <<<"$out" || { echo "FAIL: vakt status did not list the backend" >&2; exit 1; }
if ip netns list | grep -q '^vkt-demo-'; then echo "FAIL: demo left namespaces" >&2; exit 1; fi
if ls /sys/fs/bpf | grep -q '^vkt-demo-'; then echo "FAIL: demo left pinned maps" >&2; exit 1; fi
echo PASS
