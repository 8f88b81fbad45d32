#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Proves check_manifests.py can fail: each mutation below breaks one property
of manifests/ or the Dockerfile, and the checker must reject the mutated copy
with a message naming what broke. Used by test_manifests.sh.

    mutations.py MANIFEST_DIR DOCKERFILE VAKTD_HELP LDD_FILE... -> exit 0 iff every mutation is caught
"""
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "check_manifests.py")


def ds(docs):
    return next(d for d in docs if d["kind"] == "DaemonSet")


def ctr(docs):
    return ds(docs)["spec"]["template"]["spec"]["containers"][0]


def role(docs):
    return next(d for d in docs if d["kind"] == "ClusterRole")


def set_env_ref(docs, path):
    for e in ctr(docs)["env"]:
        if e["name"] == "NODE_NAME":
            e["valueFrom"]["fieldRef"]["fieldPath"] = path


def rename_key(obj, old, new):
    obj[new] = obj.pop(old)


MANIFEST_MUTATIONS = [
    ("verb create on pods", "pods has verbs",
     lambda d: role(d)["rules"][0]["verbs"].append("create")),
    ("read secrets too", "secrets",
     lambda d: role(d)["rules"].append({"apiGroups": [""], "resources": ["secrets"],
                                        "verbs": ["get"]})),
    ("wildcard resource", "networking.k8s.io/* has verbs",
     lambda d: role(d)["rules"][1]["resources"].append("*")),
    ("SYS_ADMIN added", "capabilities.add",
     lambda d: ctr(d)["securityContext"]["capabilities"]["add"].append("SYS_ADMIN")),
    ("PERFMON missing", "capabilities.add",
     lambda d: ctr(d)["securityContext"]["capabilities"]["add"].remove("PERFMON")),
    ("capabilities not dropped", "capabilities.drop",
     lambda d: ctr(d)["securityContext"]["capabilities"].pop("drop")),
    ("writable root", "readOnlyRootFilesystem",
     lambda d: ctr(d)["securityContext"].update(readOnlyRootFilesystem=False)),
    ("typo in readOnlyRootFilesystem", "unknown or unexpected field 'readOnlyRootFileSystem'",
     lambda d: rename_key(ctr(d)["securityContext"], "readOnlyRootFilesystem",
                          "readOnlyRootFileSystem")),
    ("privilege escalation", "allowPrivilegeEscalation",
     lambda d: ctr(d)["securityContext"].update(allowPrivilegeEscalation=True)),
    ("privileged", "privileged",
     lambda d: ctr(d)["securityContext"].update(privileged=True)),
    ("seccomp unconfined", "seccompProfile",
     lambda d: ctr(d)["securityContext"].update(seccompProfile={"type": "Unconfined"})),
    ("NODE_NAME from the pod name", "NODE_NAME",
     lambda d: set_env_ref(d, "metadata.name")),
    ("no tolerations", "tolerations",
     lambda d: ds(d)["spec"]["template"]["spec"].pop("tolerations")),
    ("toleration of one taint only", "tolerations",
     lambda d: ds(d)["spec"]["template"]["spec"].update(
         tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}])),
    ("readiness on /healthz", "readinessProbe",
     lambda d: ctr(d)["readinessProbe"]["httpGet"].update(path="/healthz")),
    ("liveness on another port", "livenessProbe",
     lambda d: ctr(d)["livenessProbe"]["httpGet"].update(port=8080)),
    ("scrape port disagrees", "prometheus.io",
     lambda d: ds(d)["spec"]["template"]["metadata"]["annotations"].update(
         {"prometheus.io/port": "9090"})),
    ("no hostNetwork", "hostNetwork",
     lambda d: ds(d)["spec"]["template"]["spec"].update(hostNetwork=False)),
    ("surge", "updateStrategy",
     lambda d: ds(d)["spec"]["updateStrategy"]["rollingUpdate"].update(maxSurge=1)),
    ("Bidirectional bpffs", "Bidirectional",
     lambda d: ctr(d)["volumeMounts"][0].update(mountPropagation="Bidirectional")),
    ("host root mounted", "hostPath '/'",
     lambda d: ds(d)["spec"]["template"]["spec"]["volumes"].append(
         {"name": "root", "hostPath": {"path": "/"}})),
    ("unknown vaktd flag", "not an option of vaktd",
     lambda d: ctr(d)["args"].append("--no-such-flag=1")),
    ("memory limit below the goal", "limits.memory",
     lambda d: ctr(d)["resources"]["limits"].update(memory="128Mi")),
    ("image :latest", "explicit tag",
     lambda d: ctr(d).update(image="vakt:latest")),
    ("not system-node-critical", "priorityClassName",
     lambda d: ds(d)["spec"]["template"]["spec"].pop("priorityClassName")),
    ("binding to another account", "subjects",
     lambda d: next(x for x in d if x["kind"] == "ClusterRoleBinding")["subjects"][0].update(
         name="default")),
]

DOCKERFILE_MUTATIONS = [
    ("RUN in the final stage", "RUN needs a shell",
     lambda t: t.replace("USER 0:0", "RUN echo hi\nUSER 0:0")),
    ("shell-form ENTRYPOINT", "shell form",
     lambda t: t.replace('ENTRYPOINT ["/usr/bin/vaktd"]', "ENTRYPOINT /usr/bin/vaktd")),
    ("final stage on debian", "final stage FROM",
     lambda t: t.replace("FROM scratch", "FROM debian:bookworm-slim")),
    ("a library missing", "does not copy /lib/x86_64-linux-gnu/libbpf.so.1",
     lambda t: t.replace("/lib/x86_64-linux-gnu/libbpf.so.1 \\\n", "")),
    ("a library too many", "which ldd does not list",
     lambda t: t.replace("/lib/x86_64-linux-gnu/libz.so.1 \\\n",
                         "/lib/x86_64-linux-gnu/libz.so.1 \\\n     /lib/x86_64-linux-gnu/libcap.so.2 \\\n")),
    ("a shell copied", "shell or package manager",
     lambda t: t.replace("USER 0:0", "COPY --from=build /bin/sh /bin/\nUSER 0:0")),
]


def run_check(args):
    p = subprocess.run([sys.executable, CHECK] + args, capture_output=True, text=True)
    return p.returncode, p.stderr


def main():
    mdir, dockerfile, vhelp, ldd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    failed = 0
    docs_by_file = {}
    for f in sorted(os.listdir(mdir)):
        if f.endswith(".yaml"):
            docs_by_file[f] = list(x for x in yaml.safe_load_all(open(os.path.join(mdir, f))) if x)
    for name, want, mutate in MANIFEST_MUTATIONS:
        with tempfile.TemporaryDirectory(prefix="vkt-manmut-") as tmp:
            fresh = {f: list(yaml.safe_load_all(yaml.safe_dump_all(d)))
                     for f, d in docs_by_file.items()}
            alldocs = [d for ds_ in fresh.values() for d in ds_]
            mutate(alldocs)
            for f, d in fresh.items():
                with open(os.path.join(tmp, f), "w") as fh:
                    yaml.safe_dump_all(d, fh)
            rc, err = run_check(["manifests", tmp, "--vaktd-help", vhelp])
        if rc != 0 and want in err:
            print("ok   caught: %s" % name)
        else:
            failed += 1
            print("FAIL not caught: %s (rc=%d, want %r in:\n%s)" % (name, rc, want, err))
    text = open(dockerfile).read()
    for name, want, mutate in DOCKERFILE_MUTATIONS:
        mutated = mutate(text)
        if mutated == text:
            failed += 1
            print("FAIL mutation did not apply (Dockerfile changed?): %s" % name)
            continue
        with tempfile.NamedTemporaryFile("w", prefix="vkt-dfmut-", suffix=".Dockerfile") as fh:
            fh.write(mutated)
            fh.flush()
            rc, err = run_check(["dockerfile", fh.name, "--ldd"] + ldd)
        if rc != 0 and want in err:
            print("ok   caught: %s" % name)
        else:
            failed += 1
            print("FAIL not caught: %s (rc=%d, want %r in:\n%s)" % (name, rc, want, err))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
