#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The clsact fallback end to end (vaktd --force-clsact), and programs
removed behind vaktd's back: after `tc filter del` of all our filters on
the intruder's and the backend's veths, the intruder's traffic flows (nothing
enforces), and vaktd puts the programs back within its retry period, after
which it is denied again."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import E2EError, log, run  # noqa: E402

PODS = e2elib.SEED_PODS
TARGET = ("10.244.1.20", 8080, "tcp")


def intruder_gets_through(env):
    return env.probe(env.pods["production/intruder"], [TARGET], 1.0)[TARGET][0]


def main():
    env = e2elib.Env("clsact", "routed")
    try:
        env.seed_pods()
        objdir = env.seed_objects()
        env.start_vaktd(objdir, "node-1", ["--force-clsact"])
        env.wait_ready()
        st = json.loads(env.node_exec([e2elib.VAKT, "status", "--bpffs", env.bpffs, "-o",
                                       "json"], capture=True).stdout)
        if st["attach"]["mode"] != "clsact" or len(st["attach"]["interfaces"]) != 3:
            raise E2EError("expected clsact on 3 veths: %s" % st["attach"])
        if intruder_gets_through(env):
            raise E2EError("clsact mode does not enforce")
        ok = env.probe(env.pods["production/frontend"], [TARGET], 1.0)[TARGET][0]
        if not ok:
            raise E2EError("clsact mode denies the allowed frontend -> backend")
        log("clsact mode enforces examples/")

        # Every check on the path must go: the intruder's egress, the backend's ingress,
        # and (stateful) the backend's egress, which would take the SYN-ACK of a flow it
        # never saw for a new flow. Ours sit at handle 0x76616b74, pref 16.
        for pod in ("production/intruder", "production/backend"):
            for hook in ("ingress", "egress"):
                env.node_exec(["tc", "filter", "del", "dev", env.pods[pod].hostif, hook,
                               "pref", "16", "handle", "0x76616b74", "bpf"])
        if not intruder_gets_through(env):
            raise E2EError("filter deletion did not take effect: the test proves nothing")
        log("filter deleted: the intruder gets through")
        deadline = time.time() + 6
        while intruder_gets_through(env):
            if time.time() > deadline:
                raise E2EError("vaktd did not put the program back:\n" + env.vaktd_logs(10))
            time.sleep(0.2)
        if "programs missing, attaching again" not in env.vaktd_logs(50):
            raise E2EError("no log line for the re-attachment")
        log("vaktd put the program back: the intruder is denied again")
    finally:
        env.cleanup()


if __name__ == "__main__":
    e2elib.main_wrapper(main)
