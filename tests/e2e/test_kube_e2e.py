#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""vaktd on the Kubernetes API, end to end, with real traffic.

The test API server (tests/apiserver/server.py), vaktd --kubeconfig, kubectl
and a real Prometheus all run in the node namespace; pods are network
namespaces on veths (tests/e2e/e2elib.py). Namespaces, pods and policies are
created with kubectl; after every change the verdicts of real TCP and UDP
probes must follow within CHANGE_TIMEOUT seconds.

  1. kubectl create, replace, label and delete: ingress and egress policies,
     a pod relabelled into a peer selector, an ipBlock.
  2. API faults in the middle, each followed by a check that the pinned maps
     equal a fresh compile of the server's objects (vaktd's /debug/tables
     against vaktd --dump-tables, which lists the server and compiles anew):
       - refused connections for a while, with a policy replaced, another
         deleted and the history compacted meanwhile: the last state stays
         enforced and vaktd ready during the outage; afterwards the watch
         gets 410, vaktd relists and applies exactly the difference;
       - a watch stream cut in the middle of an event.
  3. vaktd restarted while the API server refuses connections (in-cluster
     configuration this time): it stays not ready, leaves the pinned maps
     as they were (denied stays denied, allowed stays allowed), and syncs
     once the API server is back.
  4. vakt flows shows a drop with the pod's names; /metrics passes promtool
     check metrics and a real Prometheus scrapes it (vakt_build_info, a drop
     counter, the watch event counters).
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import E2EError, log, run  # noqa: E402

NODE = "node-1"
APISERVER = os.path.join(e2elib.ROOT, "tests", "apiserver", "server.py")
CHANGE_TIMEOUT = 5.0  # seconds for a change made through the API to show in traffic
PROBE_TIMEOUT = 0.4
PROM_PORT = 9090

WEB, CLIENT, OTHER, TOOL = "demo/web", "demo/client", "demo/other", "ops/tool"
PODS = {WEB: ("10.244.1.10", {"app": "web"}), CLIENT: ("10.244.1.11", {"app": "client"}),
        OTHER: ("10.244.1.12", {"app": "other"}), TOOL: ("10.244.1.20", {"app": "tool"})}
REMOTE = ("demo", "remote", "10.244.2.10", {"app": "client"})  # a peer on another node

# A client of the test server's admin interface and API, run in the node
# namespace: one kept-alive connection, so that requests can follow a
# refuse_seconds fault (the server keeps the connection that asked for it).
API_CLIENT = r"""
import http.client, json, ssl, sys
port, ca, token, reqs = int(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
for method, path, body in reqs:
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Authorization": "Bearer " + token,
                       "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit("%s %s: %d %s" % (method, path, r.status, data[:300]))
print("ok")
"""


def ns_obj(name, labels):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels}}


def pod_obj(ns, name, ip, labels, node=NODE):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "containers": [{
                "name": "c", "image": "busybox",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}


def netpol(ns, name, selector, ingress=None, egress=None, types=None):
    spec = {"podSelector": {"matchLabels": selector} if selector else {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types:
        spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


DENY_WEB = netpol("demo", "web-deny-ingress", {"app": "web"}, ingress=[], types=["Ingress"])
ALLOW_CLIENT = netpol("demo", "web-allow-client", {"app": "web"}, ingress=[{
    "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
    "ports": [{"protocol": "TCP", "port": 80}]}])
ALLOW_CLIENT_V2 = netpol("demo", "web-allow-client", {"app": "web"}, ingress=[{
    "from": [{"podSelector": {"matchLabels": {"app": "client"}}},
             {"namespaceSelector": {"matchLabels": {"team": "ops"}}}],
    "ports": [{"protocol": "TCP", "port": "http"}, {"protocol": "UDP", "port": 81}]}])
TOOL_EGRESS = netpol("ops", "tool-egress", {}, egress=[{
    "to": [{"ipBlock": {"cidr": "10.244.1.0/24", "except": ["10.244.1.10/32"]}}]}],
    types=["Egress"])


class Cluster:
    """The API server, kubectl and vaktd, all in the node namespace."""

    def __init__(self, env):
        self.env = env
        self.dir = os.path.join(env.tmp, "api")
        proc = env.spawn(["nsenter", "--net=/run/netns/" + env.node, sys.executable,
                          APISERVER, "--port", "0", "--dir", self.dir,
                          "--bookmark-interval", "1"], "apiserver.log")
        path = os.path.join(env.tmp, "apiserver.log")
        deadline = time.time() + 20
        self.info = None
        while self.info is None:
            if proc.poll() is not None or time.time() > deadline:
                raise E2EError("test API server did not start:\n" + open(path).read())
            for line in open(path).read().splitlines():
                if line.startswith("{"):
                    self.info = json.loads(line)
            time.sleep(0.05)
        self.port = self.info["port"]
        self.kubeconfig = self.info["kubeconfig"]
        self.flows_socket = os.path.join(env.tmp, "flows.sock")
        log("test API server at", self.info["url"])

    def kubectl(self, *args, input=None, check=True):
        return self.env.node_exec(["kubectl", "--kubeconfig", self.kubeconfig, "--cache-dir",
                                   os.path.join(self.env.tmp, "kcache")] + list(args),
                                  capture=True, input=input, check=check)

    def apply_new(self, verb, *objs):
        """kubectl create|replace -f - with objs."""
        self.kubectl(verb, "-f", "-", input="".join("---\n" + json.dumps(o) + "\n" for o in objs))

    def api(self, *reqs):
        """[(method, path, body)] on one kept-alive connection."""
        r = self.env.node_exec([sys.executable, "-c", API_CLIENT, str(self.port),
                                self.info["ca"], self.token(), json.dumps(reqs)],
                               capture=True, check=False)
        if r.returncode != 0:
            raise E2EError("API request failed: %s%s" % (r.stdout, r.stderr))

    def token(self):
        with open(self.info["token_file"]) as f:
            return f.read().strip()

    def start_vaktd(self, incluster=False):
        env = self.env
        cmd = ["nsenter", "--net=/run/netns/" + env.node]
        if incluster:
            cmd += ["env", "KUBERNETES_SERVICE_HOST=127.0.0.1",
                    "KUBERNETES_SERVICE_PORT=%d" % self.port]
        cmd += [e2elib.VAKTD, "--node", NODE, "--bpffs", env.bpffs,
                "--metrics-addr", "127.0.0.1:%d" % e2elib.METRICS_PORT,
                "--flows-socket", self.flows_socket, "--debug-endpoints"]
        cmd += (["--service-account-dir", self.dir] if incluster
                else ["--kubeconfig", self.kubeconfig])
        log("start vaktd:", " ".join(cmd[2:]))
        env.vaktd = env.spawn(cmd, "vaktd.log")

    def fresh_tables(self):
        """A fresh compile of the server's objects, as vaktd would compile them."""
        r = self.env.node_exec([e2elib.VAKTD, "--kubeconfig", self.kubeconfig, "--node", NODE,
                                "--dump-tables"], capture=True, timeout=60)
        return r.stdout.splitlines()

    def check_converged(self, what):
        """The pinned maps equal the agent's tables, which equal a fresh compile."""
        deadline = time.time() + CHANGE_TIMEOUT
        while True:
            status, body = self.env.http("/debug/tables", timeout=5)
            fresh = self.fresh_tables()
            lines = body.splitlines()
            head = lines[0] if lines else ""
            # The node's own addresses come from netlink, not from the API.
            agent = [l for l in lines[1:] if not (l.startswith("ipcache ") and
                                                  l.endswith(" host"))]
            if status == 200 and head.startswith("# maps: equal") and agent == fresh:
                log("%s: pinned maps equal a fresh compile of the server's objects (%s)" %
                    (what, head[len("# maps: equal "):]))
                return
            if time.time() > deadline:
                only_a = sorted(set(agent) - set(fresh))[:10]
                only_f = sorted(set(fresh) - set(agent))[:10]
                raise E2EError("%s: maps did not converge (/debug/tables %d, %s)\n"
                               "only in the agent:\n  %s\nonly in a fresh compile:\n  %s\n"
                               "--- vaktd log ---\n%s" % (
                                   what, status, head, "\n  ".join(only_a),
                                   "\n  ".join(only_f), self.env.vaktd_logs(30)))
            time.sleep(0.2)


def probe_all(env, by_src):
    """Probes from every source at once: {src: {target: (ok, detail)}}."""
    results, errors = {}, []

    def one(src, targets):
        try:
            results[src] = env.probe(env.pods[src], targets, PROBE_TIMEOUT)
        except Exception as e:  # reported below: a thread must not fail silently
            errors.append("%s: %s" % (src, e))
    threads = [threading.Thread(target=one, args=item) for item in by_src.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise E2EError("probes failed: " + "; ".join(errors))
    return results


def expect(env, what, want, timeout=CHANGE_TIMEOUT):
    """want: {(src, dst, port, proto): allowed}. Polls until real traffic agrees."""
    t0 = time.time()
    by_src = {}
    for (src, dst, port, proto) in want:
        by_src.setdefault(src, []).append((PODS[dst][0], port, proto))
    while True:
        wrong = []
        got_by_src = probe_all(env, by_src)
        for src, got in got_by_src.items():
            for (s, dst, port, proto), allowed in want.items():
                if s != src:
                    continue
                ok, detail = got[(PODS[dst][0], port, proto)]
                if ok != allowed:
                    wrong.append("%s -> %s %d/%s: want %s, got %s (%s)" % (
                        src, dst, port, proto, "allowed" if allowed else "denied",
                        "allowed" if ok else "denied", detail))
        if not wrong:
            log("%-55s traffic agrees after %.2fs (probes included)" % (what,
                                                                        time.time() - t0))
            return time.time() - t0
        if time.time() - t0 > timeout:
            raise E2EError("%s: after %.1fs:\n  %s\n--- vaktd log ---\n%s" % (
                what, timeout, "\n  ".join(wrong), env.vaktd_logs(30)))


def start_prometheus(env):
    prom = shutil.which("prometheus")
    if not prom:
        raise E2EError("prometheus missing: install Debian's prometheus (tools/install-deps.sh)")
    cfg = os.path.join(env.tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: vaktd\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % e2elib.METRICS_PORT)
    env.spawn(["nsenter", "--net=/run/netns/" + env.node, prom, "--config.file=" + cfg,
               "--storage.tsdb.path=" + os.path.join(env.tmp, "prom-data"),
               "--web.listen-address=127.0.0.1:%d" % PROM_PORT], "prometheus.log")


def prom_query(env, query):
    r = env.node_exec(["curl", "-s", "-m", "2", "--get", "--data-urlencode", "query=" + query,
                       "http://127.0.0.1:%d/api/v1/query" % PROM_PORT], check=False,
                      capture=True)
    try:
        data = json.loads(r.stdout)
    except ValueError:
        return None
    if data.get("status") != "success":
        return None
    return data["data"]["result"]


def wait_prom_value(env, query, pred, what, timeout=30):
    deadline = time.time() + timeout
    res = None
    while time.time() < deadline:
        res = prom_query(env, query)
        if res and pred(float(res[0]["value"][1])):
            log("prometheus: %s = %s" % (query, res[0]["value"][1]))
            return res
        time.sleep(0.5)
    raise E2EError("prometheus: %s: %r (%s)\n%s" % (query, res, what, open(
        os.path.join(env.tmp, "prometheus.log")).read()[-2000:]))


def check_flows(env, cluster):
    """A denied probe shows in vakt flows with the receiving pod's names."""
    proc = subprocess.Popen([e2elib.VAKT, "flows", "-o", "json", "--socket",
                             cluster.flows_socket, "-n", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    env.procs.append(proc)
    deadline = time.time() + 10
    while proc.poll() is None and time.time() < deadline:
        if e2elib.sum_metric(env.http("/metrics")[1], "vakt_flow_subscribers", {}) >= 1:
            break
        time.sleep(0.05)
    while proc.poll() is None and time.time() < deadline:
        env.probe(env.pods[OTHER], [(PODS[WEB][0], 80, "tcp")], PROBE_TIMEOUT)
    if proc.poll() is None:
        proc.kill()
        raise E2EError("vakt flows printed no drop event in 10s")
    out, err = proc.communicate()
    ev = json.loads(out.splitlines()[0])
    if (ev.get("namespace"), ev.get("pod"), ev.get("direction"), ev.get("reason"),
            ev.get("src"), ev.get("dport")) != ("demo", "web", "ingress", "policy_denied",
                                                PODS[OTHER][0], 80):
        raise E2EError("unexpected flow event: %s" % out)
    log("vakt flows:", out.strip())


def check_metrics(env):
    status, text = env.http("/metrics")
    if status != 200:
        raise E2EError("/metrics: %d" % status)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                       capture_output=True)
    if r.returncode != 0:
        raise E2EError("promtool check metrics failed:\n%s%s" % (r.stdout, r.stderr))
    for fam in ("vakt_drops_total", "vakt_forwarded_total", "vakt_endpoints",
                "vakt_bpf_map_entries", "vakt_bpf_map_capacity", "vakt_build_info",
                "vakt_policy_compile_duration_seconds", "vakt_watch_events_total",
                "vakt_watch_restarts_total", "vakt_flow_subscribers",
                "vakt_flow_events_lost_total"):
        if "# TYPE %s " % fam not in text:
            raise E2EError("/metrics lacks %s" % fam)
    if e2elib.sum_metric(text, "vakt_endpoints", {}) != 4:
        raise E2EError("vakt_endpoints is not 4")
    log("promtool check metrics: ok (%d lines)" % len(text.splitlines()))
    return text


def main():
    for tool in ("kubectl", "promtool", "openssl"):
        if not shutil.which(tool):
            raise E2EError("%s missing (tools/install-deps.sh)" % tool)
    env = e2elib.Env("kube", "routed")
    try:
        for key, (ip, _) in PODS.items():
            env.add_pod(key, ip)
        for pod in env.pods.values():
            env.serve(pod, [80, 81])
        env.wait_servers()
        start_prometheus(env)
        cluster = Cluster(env)
        t0 = time.time()
        cluster.apply_new("create", ns_obj("demo", {}), ns_obj("ops", {"team": "ops"}))
        cluster.apply_new("create", *[pod_obj(k.split("/")[0], k.split("/")[1], ip, labels)
                                      for k, (ip, labels) in PODS.items()],
                          pod_obj(REMOTE[0], REMOTE[1], REMOTE[2], REMOTE[3], "node-2"))
        cluster.start_vaktd()
        env.wait_ready(20)
        log("vaktd ready %.2fs after the objects were created" % (time.time() - t0))
        status, body = env.http("/readyz")
        if status != 200:
            raise E2EError("/readyz %d after wait_ready: %s" % (status, body))

        # --- 1. kubectl changes, real traffic follows -------------------------------
        times = []
        times.append(expect(env, "no policy: everything allowed", {
            (CLIENT, WEB, 80, "tcp"): True, (OTHER, WEB, 80, "tcp"): True,
            (TOOL, WEB, 81, "udp"): True, (TOOL, CLIENT, 80, "tcp"): True}))
        cluster.apply_new("create", DENY_WEB)
        times.append(expect(env, "create web-deny-ingress: web isolated", {
            (CLIENT, WEB, 80, "tcp"): False, (OTHER, WEB, 80, "tcp"): False,
            (TOOL, WEB, 81, "udp"): False, (CLIENT, OTHER, 80, "tcp"): True}))
        cluster.apply_new("create", ALLOW_CLIENT)
        times.append(expect(env, "create web-allow-client: client -> web:80/tcp", {
            (CLIENT, WEB, 80, "tcp"): True, (CLIENT, WEB, 81, "tcp"): False,
            (OTHER, WEB, 80, "tcp"): False, (TOOL, WEB, 80, "tcp"): False}))
        cluster.apply_new("replace", ALLOW_CLIENT_V2)
        times.append(expect(env, "replace web-allow-client: + ns team=ops, 81/udp", {
            (CLIENT, WEB, 80, "tcp"): True, (CLIENT, WEB, 81, "udp"): True,
            (TOOL, WEB, 80, "tcp"): True, (TOOL, WEB, 81, "tcp"): False,
            (OTHER, WEB, 80, "tcp"): False}))
        cluster.kubectl("label", "pod", "-n", "demo", "other", "app=client", "--overwrite")
        times.append(expect(env, "label other app=client: other joins the peers", {
            (OTHER, WEB, 80, "tcp"): True}))
        cluster.kubectl("label", "pod", "-n", "demo", "other", "app=other", "--overwrite")
        times.append(expect(env, "label other app=other: out again", {
            (OTHER, WEB, 80, "tcp"): False, (CLIENT, WEB, 80, "tcp"): True}))
        cluster.apply_new("create", TOOL_EGRESS)
        times.append(expect(env, "create tool-egress: ipBlock minus except", {
            (TOOL, CLIENT, 80, "tcp"): True, (TOOL, WEB, 80, "tcp"): False,
            (CLIENT, WEB, 80, "tcp"): True}))
        cluster.check_converged("after kubectl changes")

        # --- 2a. refused connections, changes and compaction meanwhile --------------
        restarts0 = env.metric("vakt_watch_restarts_total")
        relists0 = env.metric("vakt_watch_relists_total")
        base = "/apis/networking.k8s.io/v1/namespaces/"
        cluster.api(("POST", "/_admin/fault", {"refuse_seconds": 4}),
                    ("DELETE", base + "ops/networkpolicies/tool-egress", None),
                    ("POST", "/_admin/objects", {"items": [ALLOW_CLIENT]}),
                    ("POST", "/_admin/fault", {"compact": True}))
        log("API server refusing connections for 4s; tool-egress deleted, "
            "web-allow-client replaced, history compacted meanwhile")
        expect(env, "API unreachable: the last state stays enforced", {
            (TOOL, CLIENT, 80, "tcp"): True, (TOOL, WEB, 80, "tcp"): False,
            (TOOL, WEB, 81, "udp"): False, (CLIENT, WEB, 80, "tcp"): True,
            (OTHER, WEB, 80, "tcp"): False}, timeout=1)
        status, body = env.http("/readyz")
        if status != 200:
            raise E2EError("vaktd not ready while the API is unreachable (it enforces the "
                           "last state): %d %s" % (status, body))
        times.append(expect(env, "API back: relist applies the difference", {
            (TOOL, WEB, 80, "tcp"): False, (TOOL, WEB, 81, "udp"): False,
            (CLIENT, WEB, 80, "tcp"): True, (CLIENT, WEB, 81, "udp"): False,
            (TOOL, OTHER, 80, "tcp"): True}, timeout=4 + 2 * CHANGE_TIMEOUT))
        cluster.check_converged("after refused connections + compaction")
        if env.metric("vakt_watch_restarts_total") <= restarts0:
            raise E2EError("vakt_watch_restarts_total did not move after the outage")
        if env.metric("vakt_watch_relists_total") <= relists0:
            raise E2EError("vakt_watch_relists_total did not move after the compaction")

        # --- 2b. a watch stream cut in the middle of an event -----------------------
        cluster.api(("POST", "/_admin/fault", {"cut_events": 1}))
        cluster.apply_new("replace", ALLOW_CLIENT_V2)
        times.append(expect(env, "stream cut mid-event: the change still arrives", {
            (TOOL, WEB, 80, "tcp"): True, (CLIENT, WEB, 81, "udp"): True}))
        cluster.check_converged("after a cut watch stream")

        # --- 3. restart while the API server is unreachable -------------------------
        env.stop_vaktd()
        cluster.api(("POST", "/_admin/fault", {"refuse_seconds": 6}))
        t_refuse = time.time()
        cluster.start_vaktd(incluster=True)
        deadline = t_refuse + 3
        while time.time() < deadline:
            status, body = env.http("/readyz")
            if status == 200:
                raise E2EError("vaktd ready without the API server: " + body)
            time.sleep(0.2)
        if "waiting for the first list" not in body:
            raise E2EError("/readyz while the API is unreachable: %d %r" % (status, body))
        log("restarted vaktd, API unreachable: /readyz %d: %s" % (status, body.strip()))
        expect(env, "restart, API unreachable: pinned state kept", {
            (TOOL, WEB, 80, "tcp"): True, (OTHER, WEB, 80, "tcp"): False,
            (CLIENT, WEB, 81, "udp"): True}, timeout=1)
        if time.time() - t_refuse > 6:
            raise E2EError("checks took longer than the outage: rerun")
        deadline = time.time() + 15
        while cluster.kubectl("delete", "networkpolicy", "-n", "demo", "web-allow-client",
                              check=False).returncode != 0:
            if time.time() > deadline:
                raise E2EError("kubectl delete failed after the outage")
            time.sleep(0.3)
        env.wait_ready(30)
        times.append(expect(env, "API back: synced, the deletion applied", {
            (CLIENT, WEB, 80, "tcp"): False, (TOOL, WEB, 80, "tcp"): False}))
        cluster.check_converged("after a restart against an unreachable API")

        # --- 4. flows, metrics, Prometheus ------------------------------------------
        check_flows(env, cluster)
        text = check_metrics(env)
        adds = e2elib.sum_metric(text, "vakt_watch_events_total",
                                 {"resource": "networkpolicies", "type": "ADDED"})
        wait_prom_value(env, "vakt_build_info", lambda v: v == 1, "scraped build info")
        wait_prom_value(env, 'sum(vakt_drops_total{namespace="demo",pod="web",'
                        'reason="policy_denied"})', lambda v: v > 0, "drops scraped")
        wait_prom_value(env, 'sum(vakt_watch_events_total{type="BOOKMARK"})',
                        lambda v: v >= 1, "watch events scraped")
        wait_prom_value(env, 'vakt_policy_compile_duration_seconds_count',
                        lambda v: v >= 1, "compile histogram scraped")
        log("networkpolicy ADDED events seen by this agent: %d" % adds)
        log("change -> traffic verdict times (s): %s (max %.2f)" % (
            " ".join("%.2f" % t for t in times), max(times)))
        rc = env.stop_vaktd()
        if rc != 0:
            raise E2EError("vaktd exited with %d" % rc)
    finally:
        env.cleanup()


if __name__ == "__main__":
    e2elib.main_wrapper(main)
