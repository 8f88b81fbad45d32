#!/usr/bin/env bash
# Runs every benchmark: $BUILD/bench/bench_* binaries and bench/bench_*.sh
# scripts, printing their output. BUILD defaults to build. Exit status is
# non-zero if any benchmark failed.
set -u
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
rc=0
for b in "$BUILD"/bench/bench_*; do
	[ -x "$b" ] && [[ $b != *.[od] ]] || continue
	echo "== $(basename "$b")"
	"$b" || { echo "bench: $(basename "$b") failed" >&2; rc=1; }
	echo
done
for s in bench/bench_*.sh; do
	[ -f "$s" ] || continue
	echo "== $(basename "$s")"
	BUILD=$BUILD bash "$s" || { echo "bench: $(basename "$s") failed" >&2; rc=1; }
	echo
done
exit $rc
