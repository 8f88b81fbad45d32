#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Editing the manifests on disk changes verdicts on real traffic.

  1. examples/ as is: frontend -> backend:8080 allowed, intruder denied.
  2. a policy file removed: the frontend's egress allowance is gone, the
     established verdict is revoked for new connections.
  3. a broken manifest written: vaktd logs the loader's message, counts a
     rejected reload, and keeps enforcing the last good state.
  4. a policy added that opens every pod's egress and admits the intruder
     at every pod: the intruder (and the frontend again) get through.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import E2EError, log  # noqa: E402

PODS = e2elib.SEED_PODS
BACKEND = ("10.244.1.20", 8080, "tcp")

INTRUDER_ALLOW = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: intruder-allowed-after-all
  namespace: production
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: intruder
  egress:
  - {}
"""


def verdicts(env):
    out = {}
    for src in ("production/frontend", "production/intruder"):
        ok, _ = env.probe(env.pods[src], [BACKEND], 1.0)[BACKEND]
        out[src.split("/")[1]] = "allowed" if ok else "denied"
    return out


def write(path, text):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def expect(env, what, want):
    got = verdicts(env)
    log("%-40s %s" % (what, got))
    if got != want:
        raise E2EError("%s: got %s, want %s\n--- vaktd log ---\n%s" % (what, got, want,
                                                                      env.vaktd_logs(20)))


def main():
    env = e2elib.Env("reload", "routed")
    try:
        env.seed_pods()
        objdir = env.seed_objects()
        env.start_vaktd(objdir, "node-1")
        env.wait_ready()
        expect(env, "examples/", {"frontend": "allowed", "intruder": "denied"})

        before = env.metric("vakt_source_reloads_total")
        os.unlink(os.path.join(objdir, "30-frontend-egress-to-backend.yaml"))
        env.wait_reload(before)
        expect(env, "frontend egress policy removed", {"frontend": "denied",
                                                       "intruder": "denied"})

        errors = env.metric("vakt_source_reload_errors_total")
        write(os.path.join(objdir, "50-broken.yaml"),
              "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
              "  name: broken\n  namespace: production\nspec:\n  podSelector: {}\n"
              "  ingress:\n  - ports:\n    - port: 99999\n")
        deadline = time.time() + 5
        while env.metric("vakt_source_reload_errors_total") <= errors:
            if time.time() > deadline:
                raise E2EError("broken manifest not reported:\n" + env.vaktd_logs(10))
            time.sleep(0.05)
        if "50-broken.yaml" not in env.vaktd_logs(10):
            raise E2EError("the log does not name the broken file:\n" + env.vaktd_logs(10))
        expect(env, "broken manifest: last good state kept", {"frontend": "denied",
                                                               "intruder": "denied"})

        before = env.metric("vakt_source_reloads_total")
        os.unlink(os.path.join(objdir, "50-broken.yaml"))
        write(os.path.join(objdir, "60-intruder.yaml"), INTRUDER_ALLOW)
        env.wait_reload(before)
        # It also opens every pod's egress, so the frontend is back in too.
        expect(env, "policy admitting the intruder added", {"frontend": "allowed",
                                                            "intruder": "allowed"})
    finally:
        env.cleanup()


if __name__ == "__main__":
    e2elib.main_wrapper(main)
