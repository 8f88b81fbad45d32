#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Structural checks of manifests/ and the Dockerfile, for
tests/manifests/test_manifests.sh.

    check_manifests.py manifests DIR [--vaktd-help FILE] [--flows-header FILE]
    check_manifests.py dockerfile FILE --ldd FILE...  [--print-copies]

`manifests` checks the fields that carry the security and availability
properties (docs/install.md explains them): RBAC is exactly get/list/watch
on pods, namespaces and networkpolicies; the DaemonSet's capabilities are
exactly BPF, NET_ADMIN and PERFMON after dropping ALL; read-only root,
no privilege escalation, RuntimeDefault seccomp; probes, scrape
annotations and the metrics port agree; NODE_NAME comes from spec.nodeName;
it tolerates every taint; rolling updates of one node at a time; the only
host paths are bpffs and /run/vakt; and field names of the objects we set
are ones Kubernetes knows (a typo such as readOnlyRootFileSystem would be
dropped silently by the API server, and with it the protection).

`dockerfile` checks that the final stage has no shell: FROM scratch (or a
distroless non-debug base), no RUN, exec-form ENTRYPOINT/CMD, nothing copied
that is a shell or a package manager, and the libraries it copies are exactly
what `ldd` says the binaries need. --print-copies prints "SRC DEST_DIR" per
copied file, for the chroot run of test_manifests.sh.

Every problem is printed as "FILE: kind/name: field: what is wrong"; exit 1
if there was any.
"""
import argparse
import os
import re
import shlex
import sys

try:
    import yaml
except ImportError:  # a test that cannot run fails
    print("check_manifests.py: the python3 yaml module is missing (apt-get install python3-yaml)")
    sys.exit(1)

PROBLEMS = []


def problem(where, msg):
    PROBLEMS.append("%s: %s" % (where, msg))


# --- manifests -------------------------------------------------------------------

NAMESPACE = "vakt-system"
RBAC_WANT = {
    ("", "pods"): {"get", "list", "watch"},
    ("", "namespaces"): {"get", "list", "watch"},
    ("networking.k8s.io", "networkpolicies"): {"get", "list", "watch"},
}
CAPS_WANT = {"BPF", "NET_ADMIN", "PERFMON"}
MEMORY_GOAL = 300 * 1000 * 1000  # the agent's RSS goal at 150k pods (issue 4)
HOST_PATHS = {"/sys/fs/bpf": "/sys/fs/bpf", "/run/vakt": "/run/vakt"}  # host -> mount
NAMESPACED = {"ServiceAccount", "DaemonSet"}

# Field names Kubernetes knows, for the objects whose fields carry properties.
KNOWN = {
    "podSpec": {"serviceAccountName", "automountServiceAccountToken", "hostNetwork",
                "dnsPolicy", "hostPID", "hostIPC", "enableServiceLinks", "priorityClassName",
                "tolerations", "terminationGracePeriodSeconds", "containers", "volumes",
                "securityContext", "nodeSelector", "affinity", "initContainers"},
    "container": {"name", "image", "imagePullPolicy", "command", "args", "env", "ports",
                  "startupProbe", "livenessProbe", "readinessProbe", "resources",
                  "securityContext", "volumeMounts", "workingDir", "terminationMessagePolicy"},
    "securityContext": {"runAsUser", "runAsGroup", "runAsNonRoot", "privileged",
                        "allowPrivilegeEscalation", "readOnlyRootFilesystem", "seccompProfile",
                        "capabilities", "procMount", "seLinuxOptions", "appArmorProfile"},
    "capabilities": {"add", "drop"},
    "probe": {"httpGet", "periodSeconds", "timeoutSeconds", "failureThreshold",
              "successThreshold", "initialDelaySeconds", "terminationGracePeriodSeconds"},
    "httpGet": {"path", "port", "host", "scheme", "httpHeaders"},
    "volumeMount": {"name", "mountPath", "mountPropagation", "readOnly", "subPath"},
    "volume": {"name", "hostPath"},
    "hostPath": {"path", "type"},
    "rollingUpdate": {"maxUnavailable", "maxSurge"},
    "toleration": {"key", "operator", "value", "effect", "tolerationSeconds"},
}


def known_fields(where, obj, kind):
    if not isinstance(obj, dict):
        problem(where, "%s: not a mapping" % kind)
        return
    for k in obj:
        if k not in KNOWN[kind]:
            problem(where, "%s: unknown or unexpected field %r" % (kind, k))


def load_docs(d):
    docs = []
    files = sorted(f for f in os.listdir(d) if f.endswith((".yaml", ".yml", ".json")))
    if not files:
        problem(d, "no manifests")
    for f in files:
        path = os.path.join(d, f)
        try:
            with open(path) as fh:
                for i, doc in enumerate(yaml.safe_load_all(fh)):
                    if doc is None:
                        continue
                    if not isinstance(doc, dict):
                        problem("%s#%d" % (path, i), "document is not a mapping")
                        continue
                    docs.append((path, doc))
        except yaml.YAMLError as e:
            problem(path, "YAML: %s" % e)
    return docs


def where_of(path, doc):
    return "%s: %s/%s" % (path, doc.get("kind", "?"), (doc.get("metadata") or {}).get("name", "?"))


def check_common(path, doc):
    w = where_of(path, doc)
    for f in ("apiVersion", "kind", "metadata"):
        if f not in doc:
            problem(w, "%s missing" % f)
    md = doc.get("metadata") or {}
    if not md.get("name"):
        problem(w, "metadata.name missing")
    if doc.get("kind") in NAMESPACED and md.get("namespace") != NAMESPACE:
        problem(w, "metadata.namespace is %r, want %r" % (md.get("namespace"), NAMESPACE))
    if doc.get("kind") not in NAMESPACED and "namespace" in md:
        problem(w, "cluster-scoped object with metadata.namespace")


def check_namespace(w, doc):
    if doc["metadata"].get("name") != NAMESPACE:
        problem(w, "namespace name must be %s" % NAMESPACE)
    labels = doc["metadata"].get("labels") or {}
    # hostNetwork, hostPath and the added capabilities are all refused by "baseline".
    if labels.get("pod-security.kubernetes.io/enforce") != "privileged":
        problem(w, "metadata.labels: pod-security.kubernetes.io/enforce must be privileged "
                   "(the agent needs hostNetwork, hostPath and capabilities)")


def check_clusterrole(w, doc):
    got = {}
    for i, rule in enumerate(doc.get("rules") or []):
        rw = "%s: rules[%d]" % (w, i)
        for bad in ("resourceNames", "nonResourceURLs"):
            if bad in rule:
                problem(rw, "%s not expected" % bad)
        for extra in set(rule) - {"apiGroups", "resources", "verbs"}:
            problem(rw, "unexpected field %r" % extra)
        for g in rule.get("apiGroups") or []:
            for r in rule.get("resources") or []:
                got.setdefault((g, r), set()).update(rule.get("verbs") or [])
    if got != RBAC_WANT:
        for key in sorted(set(got) | set(RBAC_WANT)):
            if got.get(key) != RBAC_WANT.get(key):
                problem(w, "rules: %s/%s has verbs %s, want %s" % (
                    key[0] or "core", key[1], sorted(got.get(key, [])),
                    sorted(RBAC_WANT.get(key, []))))


def check_binding(w, doc, role_names, sa_names):
    ref = doc.get("roleRef") or {}
    if ref.get("kind") != "ClusterRole" or ref.get("name") not in role_names or \
            ref.get("apiGroup") != "rbac.authorization.k8s.io":
        problem(w, "roleRef must name the ClusterRole of these manifests, got %r" % ref)
    subs = doc.get("subjects") or []
    if len(subs) != 1 or subs[0].get("kind") != "ServiceAccount" or \
            subs[0].get("name") not in sa_names or subs[0].get("namespace") != NAMESPACE:
        problem(w, "subjects must be exactly the agent's ServiceAccount, got %r" % subs)


def mem_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|k|M|G)?", str(q))
    if not m:
        return None
    mult = {None: 1, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "k": 1000, "M": 1000 ** 2,
            "G": 1000 ** 3}[m.group(2)]
    return int(m.group(1)) * mult


def flag_value(args, name):
    for a in args:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def check_probe(w, c, name, path, port):
    p = c.get(name)
    if not p:
        problem(w, "%s missing" % name)
        return
    known_fields(w + ": " + name, p, "probe")
    hg = p.get("httpGet") or {}
    known_fields(w + ": " + name + ".httpGet", hg, "httpGet")
    if hg.get("path") != path or hg.get("port") != port:
        problem(w, "%s must GET %s on port %s, got %r" % (name, path, port, hg))


def check_security(w, sc):
    known_fields(w + ": securityContext", sc, "securityContext")
    caps = sc.get("capabilities") or {}
    known_fields(w + ": securityContext.capabilities", caps, "capabilities")
    if caps.get("drop") != ["ALL"]:
        problem(w, "securityContext.capabilities.drop must be [ALL], got %r" % caps.get("drop"))
    add = caps.get("add") or []
    if sorted(add) != sorted(CAPS_WANT) or len(add) != len(set(add)):
        problem(w, "securityContext.capabilities.add must be exactly %s, got %r" % (
            sorted(CAPS_WANT), add))
    expect = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
    for k, v in expect.items():
        if sc.get(k) is not v:
            problem(w, "securityContext.%s must be %s, got %r" % (k, v, sc.get(k)))
    if sc.get("privileged", False) is not False:
        problem(w, "securityContext.privileged must be false")
    if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problem(w, "securityContext.seccompProfile.type must be RuntimeDefault")
    if sc.get("runAsUser") != 0:
        problem(w, "securityContext.runAsUser must be 0 (documented: capabilities do not "
                   "reach a non-root user without ambient capabilities)")


def check_volumes(w, spec, c):
    vols = {}
    for v in spec.get("volumes") or []:
        known_fields(w + ": volume " + str(v.get("name")), v, "volume")
        hp = v.get("hostPath")
        if hp is None:
            problem(w, "volume %s: only hostPath volumes are expected" % v.get("name"))
            continue
        known_fields(w + ": volume " + str(v.get("name")) + ".hostPath", hp, "hostPath")
        if hp.get("path") not in HOST_PATHS:
            problem(w, "volume %s: hostPath %r is not one of %s" % (
                v.get("name"), hp.get("path"), sorted(HOST_PATHS)))
        vols[v.get("name")] = hp.get("path")
    mounted = {}
    for m in c.get("volumeMounts") or []:
        known_fields(w + ": volumeMount " + str(m.get("name")), m, "volumeMount")
        host = vols.get(m.get("name"))
        if host is None:
            problem(w, "volumeMount %s: no such volume" % m.get("name"))
            continue
        if m.get("mountPath") != HOST_PATHS.get(host):
            problem(w, "volumeMount %s: mountPath %r, want %r" % (
                m.get("name"), m.get("mountPath"), HOST_PATHS.get(host)))
        # Bidirectional is refused for unprivileged containers, and not needed: the
        # agent never mounts, its pins live in the host's bpffs instance.
        if m.get("mountPropagation") == "Bidirectional":
            problem(w, "volumeMount %s: Bidirectional propagation needs a privileged "
                       "container" % m.get("name"))
        if m.get("readOnly"):
            problem(w, "volumeMount %s: must be writable (pins, socket)" % m.get("name"))
        mounted[host] = m
    for host in HOST_PATHS:
        if host not in mounted:
            problem(w, "hostPath %s is not mounted" % host)
    bpffs = mounted.get("/sys/fs/bpf")
    if bpffs and bpffs.get("mountPropagation") != "HostToContainer":
        problem(w, "the bpffs mount must use mountPropagation HostToContainer")


def check_container(w, spec, c, annotations, vaktd_help, flows_default):
    known_fields(w, c, "container")
    check_security(w, c.get("securityContext") or {})
    env = {e.get("name"): e for e in c.get("env") or []}
    ref = ((env.get("NODE_NAME") or {}).get("valueFrom") or {}).get("fieldRef") or {}
    if ref.get("fieldPath") != "spec.nodeName":
        problem(w, "env NODE_NAME must come from fieldRef spec.nodeName, got %r" % ref)
    args = c.get("args") or []
    addr = flag_value(args, "--metrics-addr") or "0.0.0.0:9964"
    port = int(addr.rsplit(":", 1)[1])
    check_probe(w, c, "livenessProbe", "/healthz", port)
    check_probe(w, c, "readinessProbe", "/readyz", port)
    if "startupProbe" in c:
        check_probe(w, c, "startupProbe", "/healthz", port)
    ports = [p.get("containerPort") for p in c.get("ports") or []]
    if port not in ports:
        problem(w, "ports: the metrics port %d is not declared" % port)
    if annotations.get("prometheus.io/scrape") != "true" or \
            annotations.get("prometheus.io/port") != str(port) or \
            annotations.get("prometheus.io/path") != "/metrics":
        problem(w, "template annotations: prometheus.io/scrape \"true\", port \"%d\" and "
                   "path /metrics expected, got %r" % (port, annotations))
    bpffs = flag_value(args, "--bpffs") or "/sys/fs/bpf/vakt"
    if not bpffs.startswith("/sys/fs/bpf/"):
        problem(w, "--bpffs %s is not on the bpffs mount" % bpffs)
    sock = flag_value(args, "--flows-socket") or flows_default
    if sock and os.path.dirname(sock) != "/run/vakt":
        problem(w, "the flows socket %s is not on the /run/vakt mount" % sock)
    if vaktd_help is not None:
        for a in args:
            flag = a.split("=", 1)[0]
            if not flag.startswith("--") or flag not in vaktd_help:
                problem(w, "args: %r is not an option of vaktd (vaktd --help)" % a)
    image = c.get("image") or ""
    if not image or image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
        problem(w, "image %r must carry an explicit tag other than latest" % image)
    res = c.get("resources") or {}
    limit = mem_bytes((res.get("limits") or {}).get("memory"))
    req = mem_bytes((res.get("requests") or {}).get("memory"))
    if limit is None or not MEMORY_GOAL <= limit <= 2 * MEMORY_GOAL:
        problem(w, "resources.limits.memory %r must be between the 300 MB RSS goal and "
                   "twice that" % (res.get("limits") or {}).get("memory"))
    if req is None or (limit is not None and req > limit):
        problem(w, "resources.requests.memory missing or above the limit")
    if not (res.get("requests") or {}).get("cpu"):
        problem(w, "resources.requests.cpu missing")
    check_volumes(w, spec, c)


def check_daemonset(w, doc, sa_names, vaktd_help, flows_default):
    spec = doc.get("spec") or {}
    tmpl = spec.get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        problem(w, "spec.selector.matchLabels must match the template's labels")
    us = spec.get("updateStrategy") or {}
    ru = us.get("rollingUpdate") or {}
    known_fields(w + ": updateStrategy.rollingUpdate", ru, "rollingUpdate")
    if us.get("type") != "RollingUpdate" or ru.get("maxUnavailable") != 1 or \
            ru.get("maxSurge") != 0:
        problem(w, "updateStrategy must be RollingUpdate with maxUnavailable 1, maxSurge 0")
    ps = tmpl.get("spec") or {}
    known_fields(w + ": template.spec", ps, "podSpec")
    if ps.get("serviceAccountName") not in sa_names:
        problem(w, "serviceAccountName %r is not the agent's ServiceAccount" %
                ps.get("serviceAccountName"))
    if ps.get("hostNetwork") is not True:
        problem(w, "hostNetwork must be true")
    if ps.get("dnsPolicy") != "ClusterFirstWithHostNet":
        problem(w, "dnsPolicy must be ClusterFirstWithHostNet with hostNetwork")
    for f in ("hostPID", "hostIPC"):
        if ps.get(f):
            problem(w, "%s must not be set" % f)
    if ps.get("priorityClassName") != "system-node-critical":
        problem(w, "priorityClassName must be system-node-critical")
    tols = ps.get("tolerations") or []
    for t in tols:
        known_fields(w + ": toleration", t, "toleration")
    if not any(t.get("operator") == "Exists" and not t.get("key") and not t.get("effect")
               for t in tols):
        problem(w, "tolerations must include {operator: Exists} (no key, no effect): "
                   "every node, whatever its taints")
    if (ps.get("securityContext") or {}).get("privileged"):
        problem(w, "pod securityContext: privileged")
    cs = ps.get("containers") or []
    if len(cs) != 1:
        problem(w, "exactly one container expected, got %d" % len(cs))
    annotations = (tmpl.get("metadata") or {}).get("annotations") or {}
    for c in cs:
        check_container("%s: container %s" % (w, c.get("name")), ps, c, annotations,
                        vaktd_help, flows_default)


def check_manifests(d, vaktd_help, flows_default):
    docs = load_docs(d)
    by_kind = {}
    for path, doc in docs:
        check_common(path, doc)
        by_kind.setdefault(doc.get("kind"), []).append((path, doc))
    want = ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "Namespace", "ServiceAccount"]
    if sorted(by_kind) != want or any(len(v) != 1 for v in by_kind.values()):
        problem(d, "want exactly one each of %s, got %s" % (
            want, {k: len(v) for k, v in by_kind.items()}))
    names = lambda k: {(d_.get("metadata") or {}).get("name") for _, d_ in by_kind.get(k, [])}
    for path, doc in docs:
        w = where_of(path, doc)
        kind = doc.get("kind")
        if kind == "Namespace":
            check_namespace(w, doc)
        elif kind == "ClusterRole":
            check_clusterrole(w, doc)
        elif kind == "ClusterRoleBinding":
            check_binding(w, doc, names("ClusterRole"), names("ServiceAccount"))
        elif kind == "DaemonSet":
            check_daemonset(w, doc, names("ServiceAccount"), vaktd_help, flows_default)


# --- Dockerfile ------------------------------------------------------------------

SHELLS = re.compile(r"(^|/)(sh|bash|dash|ash|busybox|apt|apt-get|dpkg|apk|yum|dnf)$")


def parse_dockerfile(path):
    """[(stage_from, stage_name, [(instr, args)])], continuation lines joined."""
    stages, cur, buf = [], None, ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        line, buf = buf + line, ""
        instr, _, rest = line.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            cur = (parts[0], name, [])
            stages.append(cur)
        elif cur is None:
            if instr != "ARG":
                problem(path, "%s before the first FROM" % instr)
        else:
            cur[2].append((instr, rest.strip()))
    return stages


def ldd_libs(files):
    libs = set()
    for f in files:
        for line in open(f):
            line = line.strip()
            if not line or line.startswith("linux-vdso") or "not found" in line:
                if "not found" in line:
                    problem(f, "ldd: %s" % line)
                continue
            m = re.match(r"\S+ => (\S+) \(", line) or re.match(r"(/\S+) \(", line)
            if m:
                libs.add(m.group(1))
    return libs


def check_dockerfile(path, ldd_files, print_copies):
    stages = parse_dockerfile(path)
    if len(stages) < 2:
        problem(path, "want a multi-stage build (build stage + final image)")
        return
    base, _, instrs = stages[-1]
    if not (base == "scratch" or (base.startswith("gcr.io/distroless/") and "debug" not in base)):
        problem(path, "final stage FROM %s: want scratch or a distroless non-debug base" % base)
    copied, copies = set(), []
    entry = None
    for instr, rest in instrs:
        if instr == "RUN":
            problem(path, "final stage: RUN needs a shell in the image: %s" % rest)
        if instr in ("ENTRYPOINT", "CMD"):
            if not rest.startswith("["):
                problem(path, "final stage: %s in shell form needs /bin/sh: %s" % (instr, rest))
            elif instr == "ENTRYPOINT":
                entry = rest
        if instr in ("COPY", "ADD"):
            words = shlex.split(rest)
            opts = [x for x in words if x.startswith("--")]
            args = [x for x in words if not x.startswith("--")]
            if instr == "ADD" or not any(o.startswith("--from=") for o in opts):
                problem(path, "final stage: %s %s: copy from the build stage only" % (instr, rest))
            *srcs, dest = args
            if len(srcs) > 1 and not dest.endswith("/"):
                problem(path, "final stage: COPY of several files needs a directory: %s" % rest)
            for s in srcs:
                if SHELLS.search(s):
                    problem(path, "final stage copies a shell or package manager: %s" % s)
                copied.add(s)
                copies.append((s, dest))
    if not entry:
        problem(path, "final stage: no exec-form ENTRYPOINT")
    want = ldd_libs(ldd_files)
    libs = {s for s in copied if "/lib" in s}
    for missing in sorted(want - libs):
        problem(path, "final stage does not copy %s, which ldd lists" % missing)
    for extra in sorted(libs - want):
        problem(path, "final stage copies %s, which ldd does not list" % extra)
    if print_copies:
        for s, d in copies:
            print(s, d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["manifests", "dockerfile"])
    ap.add_argument("path")
    ap.add_argument("--vaktd-help", help="output of vaktd --help: args must be its options")
    ap.add_argument("--flows-header", help="agent/flowsrv.h: the default flows socket path")
    ap.add_argument("--ldd", nargs="+", default=[])
    ap.add_argument("--print-copies", action="store_true")
    a = ap.parse_args()
    if a.what == "manifests":
        vhelp = open(a.vaktd_help).read() if a.vaktd_help else None
        flows_default = None
        if a.flows_header:
            m = re.search(r'#define VAKT_FLOWS_SOCKET_DEFAULT "([^"]+)"', open(a.flows_header).read())
            flows_default = m.group(1) if m else None
            if not flows_default:
                problem(a.flows_header, "VAKT_FLOWS_SOCKET_DEFAULT not found")
        check_manifests(a.path, vhelp, flows_default)
    else:
        if not a.ldd:
            problem(a.path, "--ldd FILE... required")
        check_dockerfile(a.path, a.ldd, a.print_copies)
    for p in PROBLEMS:
        print(p, file=sys.stderr)
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
