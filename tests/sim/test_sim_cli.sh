#!/usr/bin/env bash
# vakt sim end to end, through the built binary: the seed scenario of
# examples/, named ports, IPv4 and IPv6, ends outside the cluster, the matrix
# in text and JSON, standard input, and every error path (exit 2, one line).
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
VAKT=$BUILD/vakt
EX=examples
FX=tests/sim/fixtures/dualstack.yaml
TMP=$(mktemp -d /tmp/vkt-sim-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

[ -x "$VAKT" ] || { echo "FAIL: $VAKT not built (make $VAKT)"; exit 1; }

# shellcheck source=lib.sh
. tests/sim/lib.sh

echo "== seed scenario (examples/)"
run 0 sim -f $EX --from production/frontend --to production/backend --port 8080
has out "production/frontend (10.244.1.10) -> production/backend (10.244.1.20) TCP 8080: allowed"
has out "egress of production/frontend: isolated; allowed by production/frontend-egress-to-backend rule 0"
has out "ingress of production/backend: isolated; allowed by production/backend-ingress-from-frontend rule 0"

run 1 sim -f $EX --from production/backend --to production/frontend --port 8080
has out ": denied"
has out "egress of production/backend: isolated; no rule matched"
has out "ingress of production/frontend: isolated; no rule matched"

run 1 sim -f $EX --from production/intruder --to production/backend --port 8080
has out "egress of production/intruder: isolated; no rule matched"
has out "ingress of production/backend: isolated; no rule matched"
run 1 sim -f $EX --from production/frontend --to production/intruder --port 8080
run 1 sim -f $EX --from production/frontend --to production/backend --port 9090
run 1 sim -f $EX --from production/frontend --to production/backend --port 8080 --protocol UDP
run 0 sim -f $EX --from production/intruder --to production/intruder --port 22
has out "self: a pod always reaches itself"

run 0 sim -f $EX --from production/frontend --to production/backend --port 8080 -o json
jcheck 'j["from"] == "production/frontend" and j["to"] == "production/backend"'
jcheck 'j["port"] == 8080 and j["protocol"] == "TCP" and j["allowed"] is True'
jcheck 'j["egress"]["isolated"] is True and j["egress"]["allowed"] is True'
jcheck 'j["egress"]["policies"] == ["production/frontend-egress-to-backend"]'
jcheck 'j["ingress"]["isolated"] is True and j["ingress"]["allowed"] is True'
jcheck 'j["ingress"]["policies"] == ["production/backend-ingress-from-frontend"]'
jcheck 'j["ingress"]["rules"] == [{"policy": "production/backend-ingress-from-frontend", "rule": 0}]'
jcheck 'j["egress"]["reason"] == "policy_allow" and j["ingress"]["matched"]["policy"] == "production/backend-ingress-from-frontend"'
jcheck 'j["from_ip"] == "10.244.1.10" and j["to_ip"] == "10.244.1.20" and j["self"] is False'

run 1 sim -f $EX --from production/backend --to production/frontend --port 8080 -o json
jcheck 'j["allowed"] is False and j["egress"]["allowed"] is False and j["ingress"]["allowed"] is False'
jcheck 'j["egress"]["policies"] == [] and j["ingress"]["policies"] == [] and j["egress"]["isolated"] is True'
jcheck 'j["egress"]["reason"] == "policy_denied" and j["egress"]["matched"] is None'

echo "== named ports"
run 0 sim -f $EX --from production/frontend --to production/backend --port http
has out "TCP http (8080): allowed"
run 0 sim -f $EX --from production/frontend --to production/backend --port http -o json
jcheck 'j["port"] == "http" and j["resolved_port"] == 8080 and j["allowed"] is True'
# The same name on another pod is another number: frontend's http is 80.
run 1 sim -f $EX --from production/backend --to production/frontend --port http -o json
jcheck 'j["resolved_port"] == 80 and j["allowed"] is False'
run 0 sim -f $FX --from web/client --to web/server --port http
run 1 sim -f $FX --from web/client --to web/server --port metrics
run 1 sim -f $FX --from web/client --to web/server --port dns --protocol UDP -o json
jcheck 'j["resolved_port"] == 53 and j["protocol"] == "UDP" and j["egress"]["allowed"] is True and j["ingress"]["allowed"] is False'
err_line "has no TCP container port named 'dns'" sim -f $FX --from web/client --to web/server --port dns
err_line "has no TCP container port named 'nosuch'" sim -f $FX --from web/client --to web/server --port nosuch
err_line "198.51.100.9 is not a pod" sim -f $FX --from web/client --to 198.51.100.9 --port https

echo "== IPv6 and dual stack"
run 0 sim -f $FX --from fd00:10::3 --to fd00:10::2 --port 8080 -o json
jcheck 'j["from"] == "web/client" and j["to"] == "web/server" and j["from_ip"] == "fd00:10::3" and j["to_ip"] == "fd00:10::2"'
run 0 sim -f $FX --from web/client --to fd00:10::2 --port 8080 -o json
jcheck 'j["from_ip"] == "fd00:10::3"'
run 0 sim -f $FX --from web/client --to web/server --port 8080 -o json
jcheck 'j["from_ip"] == "10.10.0.3" and j["to_ip"] == "10.10.0.2"'
run 0 sim -f $FX --from 10.10.0.3 --to web/server --port 8080 -o json
jcheck 'j["from"] == "web/client" and j["to_ip"] == "10.10.0.2"'
err_line "pod ops/probe has no IPv6 address" sim -f $FX --from ops/probe --to fd00:10::2 --port 8080
err_line "different address families" sim -f $FX --from 10.10.0.3 --to fd00:10::2 --port 8080

echo "== ends outside the cluster"
run 0 sim -f $FX --from 192.0.2.7 --to web/server --port 8080 -o json
jcheck 'j["from"] == "192.0.2.7" and j["egress"]["enforced"] is False and j["egress"]["allowed"] is True'
jcheck 'j["ingress"]["policies"] == ["web/server-ingress"] and j["ingress"]["rules"][0]["rule"] == 1'
run 0 sim -f $FX --from 192.0.2.7 --to web/server --port 8080
has out "egress of 192.0.2.7: not enforced (outside the cluster"
run 1 sim -f $FX --from 192.0.2.200 --to web/server --port 8080
run 0 sim -f $FX --from 2001:db8::1 --to web/server --port 8080 -o json
jcheck 'j["to_ip"] == "fd00:10::2" and j["allowed"] is True'
run 1 sim -f $FX --from 2001:db8::1 --to web/server --port 9100
run 0 sim -f $FX --from web/client --to 198.51.100.9 --port 443 -o json
jcheck 'j["to"] == "198.51.100.9" and j["ingress"]["enforced"] is False and j["egress"]["policies"] == ["web/client-egress"]'
run 1 sim -f $FX --from web/client --to 198.51.100.9 --port 80
run 1 sim -f $EX --from 203.0.113.9 --to production/frontend --port 80
has out "ingress of production/frontend: isolated; no rule matched"
run 1 sim -f $FX --from ops/node-agent --to web/server --port 8080
has out "egress of ops/node-agent: not enforced (hostNetwork pod"
err_line "neither 192.0.2.1 nor 192.0.2.2 is a pod" sim -f $FX --from 192.0.2.1 --to 192.0.2.2 --port 80

echo "== matrix"
run 0 sim -f $EX --matrix --port 8080
cat >"$TMP/want" <<'TABLE'
# port 8080 TCP
                     production/backend  production/frontend production/intruder
production/backend   .                   X                   X
production/frontend  .                   .                   X
production/intruder  X                   X                   .
TABLE
if diff -u "$TMP/want" "$TMP/out" >"$TMP/diff"; then ok "matrix text table exact"; else
	bad "matrix text table"; cat "$TMP/diff"; fi

run 0 sim -f $EX --matrix --port 80 --port 8080 --protocol TCP --protocol udp
if [ "$(grep -c '^# port' "$TMP/out")" -eq 4 ] && [ "$(grep -c '^$' "$TMP/out")" -eq 3 ]; then
	ok "4 tables separated by blank lines"; else bad "want 4 tables"; cat "$TMP/out"; fi
if [ "$(grep '^# port' "$TMP/out" | tr '\n' ';')" = "# port 80 TCP;# port 80 UDP;# port 8080 TCP;# port 8080 UDP;" ]; then
	ok "tables in port-major order"; else bad "table order"; grep '^# port' "$TMP/out" || true; fi

run 0 sim -f $EX --matrix
has out "# port 80 TCP"

run 0 sim -f $EX --matrix --port 8080 -o json
jcheck 'len(j["results"]) == 9'
jcheck 'all(set(r) >= {"from", "to", "port", "protocol", "allowed"} for r in j["results"])'
jcheck '[r["allowed"] for r in j["results"] if r["from"] == "production/frontend" and r["to"] == "production/backend"] == [True]'
jcheck 'sorted((r["from"], r["to"]) for r in j["results"] if r["allowed"]) == [("production/backend", "production/backend"), ("production/frontend", "production/backend"), ("production/frontend", "production/frontend"), ("production/intruder", "production/intruder")]'
jcheck 'all(r["port"] == 8080 and r["protocol"] == "TCP" for r in j["results"])'

# The intruder stays cut off whatever the port and protocol, both ways.
run 0 sim -f $EX --matrix --port 22 --port 53 --port 80 --port 8080 --protocol TCP --protocol UDP --protocol SCTP -o json
jcheck 'len(j["results"]) == 9 * 12'
jcheck 'not any(r["allowed"] for r in j["results"] if "production/intruder" in (r["from"], r["to"]) and r["from"] != r["to"])'
jcheck '{(r["port"], r["protocol"]) for r in j["results"] if r["allowed"] and r["from"] != r["to"]} == {(8080, "TCP")}'

run 0 sim -f $EX --matrix --port http -o json
jcheck '[(r["to"], r["resolved_port"]) for r in j["results"] if r["from"] == "production/frontend"] == [("production/backend", 8080), ("production/frontend", 80), ("production/intruder", None)]'
jcheck '[r["allowed"] for r in j["results"] if r["to"] == "production/intruder"] == [False, False, False]'

run 0 sim -f $FX --matrix --port 8080 -o json
jcheck 'len(j["results"]) == 16'
jcheck '[r["allowed"] for r in j["results"] if r["from"] == "web/client" and r["to"] == "web/server"] == [True]'

echo "== standard input"
# One stream, documents separated as kubectl prints them. (Redirected, not
# piped: run must not be in a subshell, or its verdicts would be lost.)
awk 'FNR == 1 && NR != 1 { print "---" } { print }' $EX/*.yaml >"$TMP/all.yaml"
run 0 sim -f - --from production/frontend --to production/backend --port 8080 <"$TMP/all.yaml"
run 1 sim -f - --from production/intruder --to production/backend --port 8080 <"$TMP/all.yaml"
run 0 sim -f - --matrix --port 8080 -o json <"$TMP/all.yaml"
jcheck 'len(j["results"]) == 9'
run 0 sim -f $EX/00-namespace.yaml -f $EX/01-pods.yaml -f $EX/30-frontend-egress-to-backend.yaml \
	--from production/frontend --to production/backend --port 8080
has out "ingress of production/backend: not isolated"

echo "== errors: exit 2, one line"
err_line "unknown pod production/nope" sim -f $EX --from production/nope --to production/backend --port 8080
err_line "'nonsense' is neither namespace/pod nor an IP address" sim -f $EX --from nonsense --to production/backend --port 8080
err_line "'10.244.1.0/24' is an address range" sim -f $EX --from 10.244.1.0/24 --to production/backend --port 8080
err_line "'10.244.1.300' is neither namespace/pod nor an IP address" sim -f $EX --from 10.244.1.300 --to production/backend --port 8080
err_line "port 0 is outside 1..65535" sim -f $EX --from production/frontend --to production/backend --port 0
err_line "port 65536 is outside 1..65535" sim -f $EX --from production/frontend --to production/backend --port 65536
err_line "invalid port 'HTTP'" sim -f $EX --from production/frontend --to production/backend --port HTTP
err_line "invalid port '-1'" sim -f $EX --from production/frontend --to production/backend --port=-1
err_line "invalid protocol 'ICMP'" sim -f $EX --from production/frontend --to production/backend --port 80 --protocol ICMP
err_line "invalid output format 'xml'" sim -f $EX --matrix -o xml
err_line "no manifests" sim --matrix
err_line "unknown option '--bogus'" sim -f $EX --matrix --bogus
err_line "needs a value" sim -f $EX --matrix --port
err_line "a query needs --port" sim -f $EX --from production/frontend --to production/backend
err_line "a query takes one --port" sim -f $EX --from production/frontend --to production/backend --port 1 --port 2
err_line "a query needs --from and --to" sim -f $EX --to production/backend --port 1
err_line "takes no --from or --to" sim -f $EX --matrix --from production/frontend
err_line "can be read only once" sim -f - -f - --matrix </dev/null
err_line "unexpected argument 'extra'" sim -f $EX --matrix extra
err_line "$TMP/missing.yaml" sim -f "$TMP/missing.yaml" --matrix

printf 'apiVersion: v1\nkind: Pod\nmetadata: [broken\n' >"$TMP/broken.yaml"
err_line "$TMP/broken.yaml" sim -f "$TMP/broken.yaml" --matrix
mkdir "$TMP/dir"
cp $EX/*.yaml "$TMP/dir/"
cat >"$TMP/dir/50-bad-port.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: bad-port
  namespace: production
spec:
  podSelector: {}
  ingress:
    - ports:
        - port: 70000
YAML
err_line "50-bad-port.yaml" sim -f "$TMP/dir" --from production/frontend --to production/backend --port 8080
has err "production/bad-port"
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: production}\nspec: {}\n' >"$TMP/noip.yaml"
err_line "noip.yaml" sim -f $EX -f "$TMP/noip.yaml" --matrix
err_line "unknown command 'frob'" frob

echo "== help and version"
run 0 sim --help
has out "--matrix"
has out "exit status"
run 0 help
has out "sim"
run 0 version
has out "vakt "
run 2
has err "usage: vakt"

echo
echo "sim cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
