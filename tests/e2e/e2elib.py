# SPDX-License-Identifier: Apache-2.0
"""Network-namespace fixtures for the vakt end-to-end tests.

A test builds one node namespace and pod namespaces on veth pairs, in one
of two shapes, starts vaktd inside the node namespace and sends real
traffic with netpod.py:

  routed   (ptp, like Calico): each pod has IP/32 on eth0, default route via
           169.254.1.1; the host side carries 169.254.1.1/32 and a /32 route
           to the pod. The node forwards between pods.
  bridged  (like the bridge CNI): host sides are ports of the bridge vbr0
           (169.254.1.1/32); pods reach each other directly at layer 2.

Every name starts with vkt-e2e-<tag>-<pid> so that concurrent tests never
collide, and Env.cleanup() (also run on SIGINT/SIGTERM and at exit) kills
what the test started and deletes its namespaces and pinned maps. Failures
raise E2EError: a test that cannot run fails, it never skips.
"""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
VAKTD = os.path.join(BUILD, "vaktd")
VAKT = os.path.join(BUILD, "vakt")
NETPOD = os.path.join(HERE, "netpod.py")
GATEWAY = "169.254.1.1"
METRICS_PORT = 9964
# The seed scenario of examples/: its pods and their addresses.
SEED_PODS = {"production/frontend": "10.244.1.10", "production/backend": "10.244.1.20",
             "production/intruder": "10.244.1.30"}


class E2EError(Exception):
    pass


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def run(cmd, check=True, capture=False, timeout=30, input=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None, text=True,
                       timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise E2EError("command failed (%d): %s\n%s" % (
            r.returncode, " ".join(cmd), (r.stderr or "") if capture else ""))
    return r


def require_environment():
    if os.geteuid() != 0:
        raise E2EError("end-to-end tests need root (network namespaces, BPF)")
    for tool in ("ip", "nsenter", "curl"):
        if not shutil.which(tool):
            raise E2EError("missing tool: %s (run tools/install-deps.sh)" % tool)
    for f in (VAKTD, VAKT):
        if not os.access(f, os.X_OK):
            raise E2EError("%s not built (run make)" % f)
    if not os.path.ismount("/sys/fs/bpf"):
        run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"])


class Pod:
    def __init__(self, env, key, ip, netns, hostif, index):
        self.env, self.key, self.ip, self.netns = env, key, ip, netns
        self.hostif, self.index = hostif, index

    def exec(self, cmd, **kw):
        return run(["ip", "netns", "exec", self.netns] + cmd, **kw)


class Env:
    def __init__(self, tag, mode="routed"):
        require_environment()
        if mode not in ("routed", "bridged"):
            raise E2EError("unknown mode " + mode)
        self.mode = mode
        self.prefix = "vkt-e2e-%s-%d" % (tag, os.getpid())
        self.node = self.prefix + "-node"
        self.netns = []
        self.procs = []
        self.pods = {}
        self.tmp = tempfile.mkdtemp(prefix=self.prefix + "-")
        self.bpffs = "/sys/fs/bpf/" + self.prefix
        self.vaktd = None
        self.vaktd_log = os.path.join(self.tmp, "vaktd.log")
        self._cleaned = False
        atexit.register(self.cleanup)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        self._make_node()

    def _on_signal(self, signum, frame):
        self.cleanup()
        sys.exit(128 + signum)

    # --- namespaces ---------------------------------------------------------
    def _add_netns(self, name):
        run(["ip", "netns", "add", name])
        self.netns.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def node_exec(self, cmd, **kw):
        """Runs cmd in the node namespace (nsenter keeps /sys/fs/bpf visible)."""
        return run(["nsenter", "--net=/run/netns/" + self.node] + cmd, **kw)

    def _make_node(self):
        self._add_netns(self.node)
        for k in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                  "net.ipv4.conf.default.rp_filter=0"):
            run(["ip", "netns", "exec", self.node, "sysctl", "-qw", k])
        if self.mode == "bridged":
            run(["ip", "-n", self.node, "link", "add", "vbr0", "type", "bridge"])
            run(["ip", "-n", self.node, "addr", "add", GATEWAY + "/32", "dev", "vbr0"])
            run(["ip", "-n", self.node, "link", "set", "vbr0", "up"])

    def add_pod(self, key, ip, covering="10.0.0.0/8"):
        """key: 'ns/name'; the pod namespace gets eth0 with ip."""
        index = len(self.pods) + 1
        netns = "%s-p%d" % (self.prefix, index)
        hostif = "vh%d" % index
        self._add_netns(netns)
        n = ["ip", "-n", self.node]
        p = ["ip", "-n", netns]
        run(n + ["link", "add", hostif, "type", "veth", "peer", "name", "eth0",
                 "netns", netns])
        run(p + ["addr", "add", ip + "/32", "dev", "eth0"])
        run(p + ["link", "set", "eth0", "up"])
        run(p + ["route", "add", GATEWAY, "dev", "eth0", "scope", "link"])
        if self.mode == "bridged":
            run(n + ["link", "set", hostif, "master", "vbr0"])
            run(p + ["route", "add", covering, "dev", "eth0", "scope", "link"])
            run(n + ["route", "replace", ip + "/32", "dev", "vbr0"])
        else:
            run(n + ["addr", "add", GATEWAY + "/32", "dev", hostif])
        run(n + ["link", "set", hostif, "up"])
        if self.mode == "routed":
            run(n + ["route", "add", ip + "/32", "dev", hostif])
        run(p + ["route", "add", "default", "via", GATEWAY, "dev", "eth0", "onlink"])
        pod = Pod(self, key, ip, netns, hostif, index)
        self.pods[key] = pod
        return pod

    def add_outside(self, ip, node_ip, uplink="vup0"):
        """An outside host behind the node's uplink (a veth named uplink)."""
        netns = self.prefix + "-out"
        self._add_netns(netns)
        run(["ip", "-n", self.node, "link", "add", uplink, "type", "veth", "peer", "name",
             "eth0", "netns", netns])
        run(["ip", "-n", self.node, "addr", "add", node_ip + "/24", "dev", uplink])
        run(["ip", "-n", self.node, "link", "set", uplink, "up"])
        run(["ip", "-n", netns, "addr", "add", ip + "/24", "dev", "eth0"])
        run(["ip", "-n", netns, "link", "set", "eth0", "up"])
        return netns

    # --- processes -------------------------------------------------------------
    def spawn(self, cmd, logname):
        f = open(os.path.join(self.tmp, logname), "ab")
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        f.close()
        self.procs.append(proc)
        return proc

    def serve(self, pod, ports=(80, 81)):
        name = pod.key
        proc = self.spawn(["ip", "netns", "exec", pod.netns, sys.executable, NETPOD, "serve",
                           name] + [str(p) for p in ports], "serve-%d.log" % pod.index)
        return proc

    def seed_pods(self, keys=None, ports=(80, 8080)):
        """The seed scenario's pods (all, or those of keys), each serving ports, ready."""
        for key in keys or SEED_PODS:
            self.serve(self.add_pod(key, SEED_PODS[key]), ports)
        self.wait_servers()

    def seed_objects(self):
        """A copy of examples/ for vaktd --objects, which the test may edit."""
        objdir = os.path.join(self.tmp, "objects")
        shutil.copytree(os.path.join(ROOT, "examples"), objdir)
        return objdir

    def wait_servers(self, timeout=10):
        deadline = time.time() + timeout
        for pod in self.pods.values():
            path = os.path.join(self.tmp, "serve-%d.log" % pod.index)
            while True:
                if os.path.exists(path) and "ready" in open(path).read():
                    break
                if time.time() > deadline:
                    raise E2EError("server of %s did not start" % pod.key)
                time.sleep(0.05)

    def probe(self, src, targets, timeout=1.0):
        """targets: [(ip, port, 'tcp'|'udp')]. Returns {target: (ok, detail)}."""
        args = ["%s,%d,%s" % t for t in targets]
        r = src.exec([sys.executable, NETPOD, "probe", str(timeout)] + args, capture=True,
                     timeout=timeout + 20)
        out = {}
        for line in r.stdout.splitlines():
            t, status, *rest = line.split(" ", 2)
            ip, port, proto = t.rsplit(",", 2)
            out[(ip, int(port), proto)] = (status == "ok", rest[0] if rest else "")
        for t in targets:
            if t not in out:
                raise E2EError("probe from %s: no result for %s" % (src.key, t))
        return out

    # --- vaktd --------------------------------------------------------------------
    def start_vaktd(self, objects, node_name, extra=()):
        cmd = ["nsenter", "--net=/run/netns/" + self.node, VAKTD, "--objects", objects,
               "--node", node_name, "--bpffs", self.bpffs,
               "--metrics-addr", "127.0.0.1:%d" % METRICS_PORT] + list(extra)
        log("start vaktd:", " ".join(cmd[2:]))
        self.vaktd = self.spawn(cmd, "vaktd.log")
        return self.vaktd

    def vaktd_logs(self, tail=60):
        try:
            lines = open(self.vaktd_log, errors="replace").read().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    def stop_vaktd(self, sig=signal.SIGTERM, timeout=10):
        if not self.vaktd:
            return None
        self.vaktd.send_signal(sig)
        try:
            rc = self.vaktd.wait(timeout)
        except subprocess.TimeoutExpired:
            self.vaktd.kill()
            rc = self.vaktd.wait()
            raise E2EError("vaktd did not exit within %ds of signal %d" % (timeout, sig))
        self.vaktd = None
        return rc

    def http(self, path, timeout=2):
        """GET path from vaktd's endpoint inside the node namespace: (status, body)."""
        r = self.node_exec(["curl", "-s", "-m", str(timeout), "-w", "\n%{http_code}",
                            "http://127.0.0.1:%d%s" % (METRICS_PORT, path)], check=False,
                           capture=True, timeout=timeout + 5)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        status = 0
        while time.time() < deadline:
            if self.vaktd and self.vaktd.poll() is not None:
                raise E2EError("vaktd exited (%d):\n%s" % (self.vaktd.returncode,
                                                          self.vaktd_logs()))
            status, _ = self.http("/readyz")
            if status == 200:
                return
            time.sleep(0.05)
        raise E2EError("vaktd not ready after %ds (last /readyz %d):\n%s" % (
            timeout, status, self.vaktd_logs()))

    def metric(self, name, labels=None):
        """Sum of the samples of name whose labels include labels."""
        status, body = self.http("/metrics")
        if status != 200:
            raise E2EError("/metrics returned %d" % status)
        return sum_metric(body, name, labels or {})

    def wait_reload(self, before, timeout=10):
        """Waits until vaktd has loaded the manifests again and is ready."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.metric("vakt_source_reloads_total") > before:
                self.wait_ready(max(1, deadline - time.time()))
                return
            time.sleep(0.05)
        raise E2EError("vaktd did not reload the manifests:\n" + self.vaktd_logs())

    def status(self, *args):
        return run([VAKT, "status", "--bpffs", self.bpffs] + list(args), capture=True)

    # --- cleanup ------------------------------------------------------------------
    def cleanup(self):
        if self._cleaned:
            return
        self._cleaned = True
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()
        for ns in reversed(self.netns):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.bpffs, ignore_errors=True)
        if os.environ.get("VKT_E2E_KEEP_LOGS"):
            log("logs kept in", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def parse_labels(s):
    out = {}
    i = 0
    while i < len(s):
        eq = s.index("=", i)
        key = s[i:eq].strip().lstrip(",")
        j = eq + 2
        val = []
        while s[j] != '"':
            if s[j] == "\\":
                j += 1
                val.append({"n": "\n"}.get(s[j], s[j]))
            else:
                val.append(s[j])
            j += 1
        out[key] = "".join(val)
        i = j + 1
    return out


def sum_metric(text, name, labels):
    total = 0.0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if "{" in head:
            mname, _, rest = head.partition("{")
            lab = parse_labels(rest[:-1])
        else:
            mname, lab = head, {}
        if mname != name:
            continue
        if all(lab.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def main_wrapper(fn):
    """Runs a test function: exit 0 on success, 1 with the reason otherwise."""
    try:
        fn()
    except E2EError as e:
        log("FAIL:", e)
        sys.exit(1)
    log("PASS")
    sys.exit(0)
