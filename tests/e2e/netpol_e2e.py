# SPDX-License-Identifier: Apache-2.0
"""Replays the reachability matrices of tests/netpol with real traffic.

For each chosen scenario step: the step's manifests (base + policies) are
written to vaktd's --objects directory in one rename, the test waits for
vaktd to reload and be ready, and every pod sends a real TCP or UDP probe
to every pod (all 9x9 pairs) on each port/protocol of the step's truth
tables (SCTP tables are left to the BPF tests: no SCTP stack is assumed
here). Every probe's outcome must equal the table.
"""

import os
import sys
import threading
import time

import e2elib
from e2elib import E2EError, log

sys.path.insert(0, os.path.join(e2elib.ROOT, "tests", "netpol"))
import matrix  # noqa: E402

PROBE_TIMEOUT = 1.5
NODE_NAME = "node-1"


def select_steps(names):
    by_scenario = {}
    for s in matrix.steps():
        by_scenario.setdefault(s.scenario, []).append(s)
    out = []
    for n in names:
        if n not in by_scenario:
            raise E2EError("scenario %s not found in tests/netpol/scenarios" % n)
        out.extend(by_scenario[n])
    return out


def write_objects(objdir, step):
    text = []
    for f in step.manifests:
        with open(f, encoding="utf-8") as fh:
            text.append(fh.read())
    tmp = os.path.join(objdir, ".objects.yaml.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n---\n".join(text))
    os.rename(tmp, os.path.join(objdir, "objects.yaml"))


def run_step(env, step, pods):
    tables = [t for t in step.tables() if t.proto in ("TCP", "UDP")]
    if not tables:
        raise E2EError("%s: no TCP or UDP table to replay" % step.id)
    targets = [(p.ip, t.port, t.proto.lower()) for t in tables for p in pods]
    results = {}
    errors = []

    def probe_from(src):
        try:
            results[src] = env.probe(env.pods[src], targets, PROBE_TIMEOUT)
        except Exception as e:  # reported below; a thread must not die silently
            errors.append("%s: %s" % (src, e))

    threads = [threading.Thread(target=probe_from, args=(p.ns + "/" + p.name,)) for p in pods]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise E2EError("probes failed: " + "; ".join(errors))
    ip_of = {p.ns + "/" + p.name: p.ip for p in pods}
    wrong = []
    checked = 0
    for t in tables:
        for (src, dst), allowed in sorted(t.allowed.items()):
            ok, detail = results[src][(ip_of[dst], t.port, t.proto.lower())]
            checked += 1
            if ok != allowed:
                wrong.append("  %s -> %s %d/%s: expected %s, got %s (%s)" % (
                    src, dst, t.port, t.proto, "allowed" if allowed else "denied",
                    "allowed" if ok else "denied", detail))
            elif ok and detail != "ok " + dst and detail != dst:
                wrong.append("  %s -> %s %d/%s answered by %s" % (src, dst, t.port, t.proto,
                                                                  detail))
    return checked, wrong


def run(mode, scenario_names):
    steps = select_steps(scenario_names)
    env = e2elib.Env("np" + mode[0], mode)
    try:
        pods = [p for p in steps[0].pods() if p.node == NODE_NAME and p.ip]
        if len(pods) != 9:
            raise E2EError("expected 9 pods on %s in the base, found %d" % (NODE_NAME,
                                                                         len(pods)))
        for p in pods:
            env.add_pod(p.ns + "/" + p.name, p.ip)
        for pod in env.pods.values():
            env.serve(pod)
        env.wait_servers()
        objdir = os.path.join(env.tmp, "objects")
        os.mkdir(objdir)
        write_objects(objdir, steps[0])
        env.start_vaktd(objdir, NODE_NAME)
        env.wait_ready()
        total = 0
        failures = []
        first = True
        for step in steps:
            same = sorted((p.ns, p.name, p.ip) for p in step.pods() if p.node == NODE_NAME)
            if same != sorted((p.ns, p.name, p.ip) for p in pods):
                raise E2EError("%s: pods differ from the first step's" % step.id)
            if not first:
                before = env.metric("vakt_source_reloads_total")
                write_objects(objdir, step)
                env.wait_reload(before)
            first = False
            t0 = time.time()
            checked, wrong = run_step(env, step, pods)
            total += checked
            log("%-45s %4d probes, %d wrong (%.1fs)" % (step.id, checked, len(wrong),
                                                        time.time() - t0))
            if wrong:
                failures.append("%s (%s):\n%s" % (step.id, mode, "\n".join(wrong)))
        if failures:
            raise E2EError("real traffic disagrees with the expected matrices:\n" +
                           "\n".join(failures) + "\n--- vaktd log ---\n" + env.vaktd_logs(30))
        if env.metric("vakt_drops_total") <= 0:
            raise E2EError("no drop was counted although denied probes were sent")
        log("%d probes over %d steps in %s mode matched the matrices" % (total, len(steps),
                                                                        mode))
    finally:
        env.cleanup()
