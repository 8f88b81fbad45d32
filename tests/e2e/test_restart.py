#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kill -9 of vaktd under traffic, and restart.

Phase 1: while vaktd is killed (SIGKILL: no cleanup of any kind) and
restarted, new connections are opened continuously on an allowed path
(frontend -> backend:8080) and a denied one (intruder -> backend:8080), and
an established flow streams data. Every allowed attempt must succeed, no
denied attempt may ever succeed (no window of allow-all), and the stream
must not stall. The restarted vaktd must adopt the attachments.

Phase 2: vaktd is killed again, the manifests are edited while it is down
(the frontend's allowance removed), and the restarted vaktd reconciles the
pinned maps: the path it revoked is denied.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import E2EError, log  # noqa: E402

PODS = e2elib.SEED_PODS
WINDOW = 6.0  # seconds of continuous probing around the restart


def start(env, objdir):
    env.start_vaktd(objdir, "node-1")
    env.wait_ready()


def bg(env, pod, args, name):
    return subprocess.Popen(["ip", "netns", "exec", env.pods[pod].netns, sys.executable,
                             e2elib.NETPOD] + args, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


def one_connection(env, pod, target):
    """One TCP connection that must be answered (the echo server needs a ping)."""
    out = env.pods[pod].exec([sys.executable, e2elib.NETPOD, "watch", "0.01", "1", "1.5",
                              target], capture=True).stdout
    return parse_counts(out)[0] == 1


def parse_counts(out):
    f = out.split()
    return int(f[1]), int(f[3]), out.strip()


def main():
    env = e2elib.Env("restart", "routed")
    try:
        for key, ip in PODS.items():
            env.add_pod(key, ip)
        env.serve(env.pods["production/frontend"], [80])
        env.serve(env.pods["production/intruder"], [80])
        env.spawn(["ip", "netns", "exec", env.pods["production/backend"].netns,
                   sys.executable, e2elib.NETPOD, "echo", "8080"], "serve-%d.log" %
                  env.pods["production/backend"].index)
        env.wait_servers()
        objdir = env.seed_objects()
        start(env, objdir)

        # Phase 1: kill -9 and restart under traffic.
        allowed = bg(env, "production/frontend", ["watch", str(WINDOW), "0.05", "1.0",
                                                  "10.244.1.20,8080,tcp"], "allowed")
        denied = bg(env, "production/intruder", ["watch", str(WINDOW), "0.05", "0.5",
                                                 "10.244.1.20,8080,tcp"], "denied")
        stream = bg(env, "production/frontend", ["stream", "10.244.1.20", "8080",
                                                 str(WINDOW)], "stream")
        time.sleep(1.0)
        log("kill -9 vaktd pid", env.vaktd.pid)
        env.stop_vaktd(signal.SIGKILL)
        time.sleep(1.5)
        status = env.status()
        if "production/backend" not in status.stdout:
            raise E2EError("pinned maps lost after kill -9:\n" + status.stdout)
        start(env, objdir)
        log("restarted vaktd is ready")
        outs = {}
        for name, p in (("allowed", allowed), ("denied", denied), ("stream", stream)):
            out, _ = p.communicate(timeout=WINDOW + 20)
            outs[name] = out.strip()
            log("%-8s %s" % (name, outs[name]))
        wrong = []
        ok, fail, text = parse_counts(outs["allowed"])
        if fail or ok < WINDOW / 0.05 * 0.8:
            wrong.append("allowed path failed during the restart: " + text)
        ok, fail, text = parse_counts(outs["denied"])
        if ok:
            wrong.append("denied path let connections through (allow-all window): " + text)
        f = outs["stream"].split()
        if len(f) < 6 or f[1] != f[3] or int(f[1]) < 50 or int(f[5]) > 500 or "closed" in f:
            wrong.append("established flow disturbed: " + outs["stream"])
        if "adopt" not in env.vaktd_logs(200) and "attached" not in env.vaktd_logs(200):
            wrong.append("restarted vaktd did not report its attachments")
        if wrong:
            raise E2EError("\n  ".join(["kill -9 / restart:"] + wrong) + "\n--- vaktd log ---\n"
                           + env.vaktd_logs(40))

        # Phase 2: revoke while vaktd is down; the restart reconciles.
        env.stop_vaktd(signal.SIGKILL)
        os.unlink(os.path.join(objdir, "30-frontend-egress-to-backend.yaml"))
        if not one_connection(env, "production/frontend", "10.244.1.20,8080,tcp"):
            raise E2EError("with vaktd down, the last state must stay enforced (allowed)")
        start(env, objdir)
        if one_connection(env, "production/frontend", "10.244.1.20,8080,tcp"):
            raise E2EError("restarted vaktd did not reconcile a revocation made while down")
        log("revocation made while vaktd was down is enforced after the restart")
    finally:
        env.cleanup()


if __name__ == "__main__":
    e2elib.main_wrapper(main)
