#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""vaktd's HTTP endpoint in a node namespace.

  /healthz  200 while the loop runs
  /readyz   503 while a local pod of the manifests has no veth carrying our
            programs (with the reason), 200 once it has, 503 again when the
            veth goes
  /metrics  valid Prometheus text (promtool check metrics), and the counters
            move with real traffic: allowed connections in
            vakt_forwarded_total, denied ones in vakt_drops_total
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import E2EError, log, run  # noqa: E402

PODS = e2elib.SEED_PODS


def wait_status(env, path, want, timeout=10):
    deadline = time.time() + timeout
    while True:
        status, body = env.http(path)
        if status == want:
            return body
        if time.time() > deadline:
            raise E2EError("%s: %d, want %d; body:\n%s" % (path, status, want, body))
        time.sleep(0.05)


def connections(env, src, target, n):
    out = env.pods[src].exec([sys.executable, e2elib.NETPOD, "watch", str(n * 0.05), "0.05",
                              "0.5", target], capture=True).stdout
    f = out.split()
    return int(f[1]), int(f[3])


def main():
    promtool = shutil.which("promtool")
    if not promtool:
        raise E2EError("promtool missing: install Debian's prometheus (tools/install-deps.sh)")
    env = e2elib.Env("http", "routed")
    try:
        # The intruder's veth comes later: vaktd must not be ready before it.
        env.seed_pods(["production/frontend", "production/backend"])
        objdir = env.seed_objects()
        env.start_vaktd(objdir, "node-1")
        wait_status(env, "/healthz", 200)
        time.sleep(0.5)
        status, body = env.http("/readyz")
        if status != 503 or "intruder" not in body:
            raise E2EError("/readyz without the intruder's veth: %d %r" % (status, body))
        log("/readyz before the intruder's veth exists: 503:", body.strip())
        intruder = env.add_pod("production/intruder", PODS["production/intruder"])
        env.serve(intruder, [80])
        env.wait_servers()
        wait_status(env, "/readyz", 200, 5)
        log("/readyz once every local pod's veth carries programs: 200")

        status, text = env.http("/metrics")
        if status != 200:
            raise E2EError("/metrics: %d" % status)
        r = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                           capture_output=True)
        if r.returncode != 0:
            raise E2EError("promtool check metrics failed:\n%s%s" % (r.stdout, r.stderr))
        log("promtool check metrics: ok (%d lines)" % len(text.splitlines()))
        for fam in ("vakt_drops_total", "vakt_forwarded_total", "vakt_endpoints",
                    "vakt_bpf_map_entries", "vakt_bpf_map_capacity",
                    "vakt_policy_compile_duration_seconds", "vakt_build_info"):
            if "# TYPE %s " % fam not in text:
                raise E2EError("/metrics lacks %s" % fam)
        if e2elib.sum_metric(text, "vakt_endpoints", {}) != 3:
            raise E2EError("vakt_endpoints is not 3")

        allow_lbl = {"namespace": "production", "pod": "backend", "direction": "ingress",
                     "reason": "policy_allow"}
        deny_lbl = {"namespace": "production", "pod": "intruder", "direction": "egress",
                    "reason": "policy_denied"}
        a0 = env.metric("vakt_forwarded_total", allow_lbl)
        d0 = env.metric("vakt_drops_total", deny_lbl)
        ok, fail = connections(env, "production/frontend", "10.244.1.20,8080,tcp", 20)
        if ok != 20 or fail:
            raise E2EError("allowed connections failed: ok %d fail %d" % (ok, fail))
        ok, fail = connections(env, "production/intruder", "10.244.1.20,8080,tcp", 10)
        if ok:
            raise E2EError("denied connections succeeded: %d" % ok)
        a1 = env.metric("vakt_forwarded_total", allow_lbl)
        d1 = env.metric("vakt_drops_total", deny_lbl)
        log("policy_allow at backend ingress %d -> %d, policy_denied at intruder egress %d -> %d"
            % (a0, a1, d0, d1))
        if a1 - a0 < 20:
            raise E2EError("vakt_forwarded_total{policy_allow} moved by %d for 20 connections"
                           % (a1 - a0))
        if d1 - d0 < 10:
            raise E2EError("vakt_drops_total{policy_denied} moved by %d for 10 denied SYNs"
                           % (d1 - d0))

        status, _ = env.http("/nope")
        if status != 404:
            raise E2EError("/nope: %d, want 404" % status)
        run(["ip", "-n", env.node, "link", "del", intruder.hostif])
        body = wait_status(env, "/readyz", 503, 5)
        log("/readyz after the intruder's veth is gone: 503:", body.strip())
    finally:
        env.cleanup()


if __name__ == "__main__":
    e2elib.main_wrapper(main)
