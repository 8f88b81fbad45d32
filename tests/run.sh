#!/usr/bin/env bash
# Runs every test of the project and prints one closing line
# "tests: N passed, N failed". Each test is a program; exit 0 = pass.
#   unit (cmocka):           $BUILD/tests/unit/test_*
#   BPF_PROG_TEST_RUN:       $BUILD/tests/bpf/test_*          (root)
#   fuzz (short run):        $BUILD/tests/fuzz/fuzz_*
#   scripts:                 tests/*/test_*.sh, tests/*/test_*.py (e2e need root)
# A test that cannot run (not root, missing tool) fails: CI must never
# report green for a dataplane it did not exercise.
# TESTS=pattern runs only the tests whose name contains pattern.
set -u
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"
pass=0 fail=0 failed=()

run_one() {
	local name=$1; shift
	if [ -n "${TESTS:-}" ] && [[ $name != *"$TESTS"* ]]; then return; fi
	local log=$LOGDIR/$(echo "$name" | tr '/' '_').log
	local t0=$EPOCHREALTIME
	if "$@" >"$log" 2>&1; then
		pass=$((pass + 1))
		printf 'PASS %-50s %6.2fs\n' "$name" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{print b-a}')"
	else
		fail=$((fail + 1)); failed+=("$name")
		printf 'FAIL %-50s (log: %s)\n' "$name" "$log"
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
}

for t in "$BUILD"/tests/unit/test_*; do
	[ -x "$t" ] && [[ $t != *.[od] ]] && run_one "unit/$(basename "$t")" "$t"
done
for t in "$BUILD"/tests/bpf/test_*; do
	[ -x "$t" ] && [[ $t != *.[od] ]] && run_one "bpf/$(basename "$t")" "$t"
done
for t in "$BUILD"/tests/fuzz/fuzz_*; do
	[ -x "$t" ] && [[ $t != *.[od] ]] || continue
	n=$(basename "$t")
	corpus=tests/fuzz/corpus/${n#fuzz_}
	work=$BUILD/fuzz-work/$n
	rm -rf "$work"; mkdir -p "$work"
	run_one "fuzz/$n" "$t" -runs="${FUZZ_RUNS:-20000}" -max_len=8192 -timeout=10 \
		"$work" "$corpus"
done
for t in tests/*/test_*.sh tests/*/test_*.py; do
	[ -f "$t" ] || continue
	case $t in
	*.py) run_one "${t#tests/}" python3 "$t" ;;
	*) run_one "${t#tests/}" bash "$t" ;;
	esac
done

echo
if [ "$fail" -gt 0 ]; then
	echo "failed: ${failed[*]}"
fi
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
