# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Check helpers shared by the vakt CLI tests. Source after setting VAKT (the
# binary) and TMP (a scratch directory); the caller prints the summary from
# $pass and $fail.
#   run WANT_RC ARGS...        vakt ARGS, stdout/stderr kept in $TMP/out, $TMP/err
#   runb WANT_RC BIN ARGS...   the same for another binary
#   jcheck EXPR                EXPR, a python expression over j = the JSON on stdout
#   has out|err TEXT           the output contains TEXT
#   one_err_line [CONTEXT]     exactly one stderr line and nothing on stdout
#   err_line TEXT ARGS...      exit 2, one stderr line containing TEXT, no stdout

pass=0 fail=0
RC=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

runb() {
	local want=$1 bin=$2; shift 2
	set +e
	"$bin" "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	set -e
	if [ "$RC" -eq "$want" ]; then
		ok "exit $want: vakt $*"
	else
		bad "exit $RC (want $want): vakt $*"
		sed 's/^/     out| /' "$TMP/out"
		sed 's/^/     err| /' "$TMP/err"
	fi
}
run() { local want=$1; shift; runb "$want" "$VAKT" "$@"; }

jcheck() {
	if python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$TMP/out" "$1" 2>"$TMP/jerr"; then
		ok "json: $1"
	else
		bad "json: $1"; sed 's/^/     out| /' "$TMP/out"; sed 's/^/     py | /' "$TMP/jerr"
	fi
}

has() {
	if grep -qF -- "$2" "$TMP/$1"; then ok "$1 has: $2"; else
		bad "$1 lacks: $2"; sed "s/^/     $1| /" "$TMP/$1"; fi
}

one_err_line() {
	if [ "$(wc -l <"$TMP/err")" -eq 1 ] && [ ! -s "$TMP/out" ]; then ok "one error line, no output"; else
		bad "want one stderr line and empty stdout${1:+: $1}"; sed 's/^/     err| /' "$TMP/err"; fi
}

err_line() {
	local want=$1; shift
	run 2 "$@"
	has err "$want"
	one_err_line "vakt $*"
}
