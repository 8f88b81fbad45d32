#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A vouched flow between two local pods is cut when the receiver's ingress
is revoked, while the sender's egress still allows it; routed and bridged pods.

Between two local pods whose addresses are bound to their veths, the
receiver's point stops looking up conntrack once it has vouched for a flow
(docs/datapath.md, "Vouching"). This is the case that design must get
right, on a one-way flow (so that no reply, checked at the receiver's own
egress, can stop it instead): frontend sends UDP to backend:9000 every
10 ms, the conntrack map shows the vouch in use, then the backend's
ingress rule for it is removed from the manifests (the frontend's egress
rule stays). No datagram may arrive once vaktd has applied the change, the
backend's point must count the drops, and a new flow must fail.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import E2EError, log  # noqa: E402

BACKEND = "10.244.1.20"
PORT = 9000
SECONDS = 5.0
REVOKE_AT = 2.0
# Datagrams already past the backend's veth when the change landed.
SLACK = 0.05

RULE = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: %(name)s
  namespace: production
spec:
  podSelector:
    matchLabels:
      app: %(pod)s
  policyTypes: [%(dir)s]
  %(field)s:
  - %(peer)s:
    - podSelector:
        matchLabels:
          app: %(other)s
    ports:
    - protocol: UDP
      port: %(port)d
"""


def write_rule(objdir, fname, **kw):
    with open(os.path.join(objdir, fname), "w") as f:
        f.write(RULE % dict(kw, port=PORT))


def vouched_entries(env):
    """Conntrack entries holding a vouch, read from the pinned map."""
    r = e2elib.run(["bpftool", "-j", "map", "dump", "pinned", os.path.join(env.bpffs, "ct")],
                   capture=True)
    return [e for e in json.loads(r.stdout)
            if e.get("formatted", {}).get("value", {}).get("vouch", 0)]


def netpod(env, pod, args):
    return subprocess.Popen(["ip", "netns", "exec", env.pods[pod].netns, sys.executable,
                             e2elib.NETPOD] + args, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


def check_mode(mode):
    env = e2elib.Env("vouch", mode)
    try:
        env.seed_pods(ports=(80,))
        objdir = env.seed_objects()
        write_rule(objdir, "35-frontend-udp.yaml", name="frontend-udp", pod="frontend",
                   dir="Egress", field="egress", peer="to", other="backend")
        write_rule(objdir, "45-backend-udp.yaml", name="backend-udp", pod="backend",
                   dir="Ingress", field="ingress", peer="from", other="frontend")
        env.start_vaktd(objdir, "node-1")
        env.wait_ready()

        sink = netpod(env, "production/backend", ["udpsink", str(PORT), str(SECONDS + 3)])
        if sink.stdout.readline().strip() != "ready":
            raise E2EError("udp sink did not start")
        sender = netpod(env, "production/frontend", ["udpsend", BACKEND, str(PORT),
                                                     str(SECONDS)])
        t0 = time.time()
        time.sleep(REVOKE_AT / 2)
        vouched = vouched_entries(env)
        log(mode, "entries holding a vouch:", len(vouched))
        if not vouched:
            raise E2EError("no conntrack entry holds a vouch while frontend -> backend streams:"
                           " the test would not exercise vouching\n" + env.vaktd_logs(20))
        time.sleep(max(0, REVOKE_AT - (time.time() - t0)))
        drops = env.metric("vakt_drops_total", {"pod": "backend", "direction": "ingress"})
        before = env.metric("vakt_source_reloads_total")
        os.unlink(os.path.join(objdir, "45-backend-udp.yaml"))
        env.wait_reload(before)
        applied = time.time()
        sent = sender.communicate(timeout=SECONDS + 20)[0].split()
        got = sink.communicate(timeout=SECONDS + 20)[0].split()
        received, last = int(got[1]), float(got[3])
        log("sent %s received %d; revocation applied at %.2f s, last datagram at %.2f s"
            % (sent[1], received, applied - t0, last - t0))
        wrong = []
        if received < REVOKE_AT / 0.01 * 0.3:
            wrong.append("the flow did not pass before the revocation: %d datagrams" % received)
        if last > applied + SLACK:
            wrong.append("datagrams kept arriving %.2f s after the receiver's ingress was revoked"
                         % (last - applied))
        if env.metric("vakt_drops_total", {"pod": "backend", "direction": "ingress"}) <= drops:
            wrong.append("no ingress drop counted at the backend")
        ok, _ = env.probe(env.pods["production/frontend"], [(BACKEND, 80, "tcp")],
                          1.0)[(BACKEND, 80, "tcp")]
        if ok:
            wrong.append("a connection the policies never allowed got through")
        if wrong:
            raise E2EError("\n  ".join(["vouched flow revocation:"] + wrong) +
                           "\n--- vaktd log ---\n" + env.vaktd_logs(30))
    finally:
        env.cleanup()


def main():
    # Bridged pods are bound by the addresses in their namespaces, and vouch as routed ones do.
    for mode in ("routed", "bridged"):
        check_mode(mode)


if __name__ == "__main__":
    e2elib.main_wrapper(main)
