#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes tests/netpol/base.yaml and tests/netpol/scenarios/ (the committed data).

Every scenario is a transcription of one upstream Kubernetes e2e test
(test/e2e/network/netpol/network_policy.go and network_legacy.go) onto the
upstream model: namespaces x, y, z with pods a, b, c, each serving ports 80
and 81 on TCP, UDP and SCTP. The expected tables are written the way the
upstream tests write them: start from "everything allowed" and apply the
test's Expect* statements (Reach below mirrors ExpectPeer, ExpectAllIngress,
ExpectAllEgress and Expect). A pod always reaches itself (upstream ignores
loopback; vakt defines it as allowed).

Before anything is written, every expected cell is cross-checked against
refeval.py, an independent, naive evaluator of the NetworkPolicy semantics;
any disagreement aborts the generation. When PyYAML is installed, the
YAML-subset reader of matrix.py is checked against it on every file.

Usage: python3 tests/netpol/gen_scenarios.py [--check]
  --check   regenerate into a temporary directory and fail if the committed
            files differ (nothing is written to the tree)
"""

import copy
import filecmp
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import matrix  # noqa: E402
import refeval  # noqa: E402

NSS = ["x", "y", "z"]
PODNAMES = ["a", "b", "c"]
PODS = ["%s/%s" % (n, p) for n in NSS for p in PODNAMES]
NS_NAME = "kubernetes.io/metadata.name"
NP = "network_policy.go"
LEG = "network_legacy.go"
VAKT = "vakt (not upstream)"


def ip(pod):
    ns, name = pod.split("/")
    return "10.244.%d.%d" % (NSS.index(ns) + 1, 10 + PODNAMES.index(name))


# ---------------------------------------------------------------- base model

def base_objects():
    objs = []
    for ns in NSS:
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": {"ns": ns}}})
    for pod in PODS:
        ns, name = pod.split("/")
        containers = []
        for port in (80, 81):
            for proto in ("TCP", "UDP", "SCTP"):
                containers.append({
                    "name": "cont-%d-%s" % (port, proto.lower()),
                    "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                    "ports": [{"name": "serve-%d-%s" % (port, proto.lower()),
                               "containerPort": port, "protocol": proto}]})
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": name, "namespace": ns, "labels": {"pod": name}},
                     "spec": {"nodeName": "node-1", "containers": containers},
                     "status": {"phase": "Running", "podIP": ip(pod),
                                "podIPs": [{"ip": ip(pod)}]}})
    return objs


def find(objs, kind, name, ns=None):
    for o in objs:
        md = o["metadata"]
        if o["kind"] == kind and md["name"] == name and md.get("namespace") == ns:
            return o
    raise KeyError((kind, ns, name))


def set_ns_labels(nsname_, labels):
    def mut(objs):
        find(objs, "Namespace", nsname_)["metadata"]["labels"].update(labels)
    mut.describe = "namespace %s labels += %s" % (nsname_, labels)
    return mut


def set_pod_labels(pod, labels, replace=False):
    ns, name = pod.split("/")

    def mut(objs):
        md = find(objs, "Pod", name, ns)["metadata"]
        if replace:
            md["labels"] = dict(labels)
        else:
            md["labels"].update(labels)
    mut.describe = "pod %s labels %s %s" % (pod, "=" if replace else "+=", labels)
    return mut


# ---------------------------------------------------------------- YAML out

_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./-]*$")
_AMBIG = re.compile(r"^([-+]?[0-9._]+|true|false|yes|no|on|off|null|y|n|~)$", re.I)


def yscalar(v):
    if v is True or v is False:
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if v == {}:
        return "{}"
    if v == []:
        return "[]"
    s = str(v)
    if _PLAIN.match(s) and not _AMBIG.match(s):
        return s
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def yemit(obj, indent=0):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, yscalar(k)))
                out.extend(yemit(v, indent + 2 if isinstance(v, dict) else indent))
            else:
                out.append("%s%s: %s" % (pad, yscalar(k), yscalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and item:
                sub = yemit(item, indent + 2)
                sub[0] = pad + "- " + sub[0][indent + 2:]
                out.extend(sub)
            elif isinstance(item, list) and item:
                raise ValueError("nested lists are not used")
            else:
                out.append("%s- %s" % (pad, yscalar(item)))
    else:
        raise ValueError(obj)
    return out


def ydocs(objs, header=""):
    parts = [header] if header else []
    for i, o in enumerate(objs):
        if i:
            parts.append("---\n")
        parts.append("\n".join(yemit(o)) + "\n")
    return "".join(parts)


# ---------------------------------------------------------------- policies

def ml(**labels):
    return {"matchLabels": dict(labels)}


def ml_d(labels):
    return {"matchLabels": dict(labels)}


def me(key, op, values=None):
    e = {"key": key, "operator": op}
    if values is not None:
        e["values"] = list(values)
    return {"matchExpressions": [e]}


def nsname(ns):
    return ml_d({NS_NAME: ns})


def peer(pod=None, ns=None, cidr=None, except_=None):
    p = {}
    if pod is not None:
        p["podSelector"] = pod
    if ns is not None:
        p["namespaceSelector"] = ns
    if cidr is not None:
        p["ipBlock"] = {"cidr": cidr}
        if except_:
            p["ipBlock"]["except"] = list(except_)
    return p


def port(num=None, proto=None, end=None):
    p = {}
    if proto is not None:
        p["protocol"] = proto
    if num is not None:
        p["port"] = num
    if end is not None:
        p["endPort"] = end
    return p


def irule(frm=None, ports=None):
    r = {}
    if ports is not None:
        r["ports"] = ports
    if frm is not None:
        r["from"] = frm
    return r


def erule(to=None, ports=None):
    r = {}
    if ports is not None:
        r["ports"] = ports
    if to is not None:
        r["to"] = to
    return r


def policy(name, sel, ingress=None, egress=None, types=None, ns="x"):
    """A NetworkPolicy; policyTypes omitted when types is None (API default)."""
    spec = {"podSelector": sel}
    if types is not None:
        spec["policyTypes"] = list(types)
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def gen(name, sel, ingress=None, egress=None, ns="x", order=None):
    """As upstream's GenNetworkPolicy with SetSpecIngressRules/SetSpecEgressRules:
    each of them adds its policy type, in call order."""
    types = []
    for t in order or ("Ingress", "Egress"):
        if t == "Ingress" and ingress is not None:
            types.append("Ingress")
        if t == "Egress" and egress is not None:
            types.append("Egress")
    return policy(name, sel, ingress, egress, types, ns)


# ---------------------------------------------------------------- expectations

class Reach:
    """Upstream's Reachability: a full matrix, default value, Expect* edits."""

    def __init__(self, default=True):
        self.m = {(s, d): default for s in PODS for d in PODS}

    @staticmethod
    def _match(pod, ns, name):
        pns, pname = pod.split("/")
        return (ns is None or ns == pns) and (name is None or name == pname)

    def peer(self, fns=None, fpod=None, tns=None, tpod=None, v=False):
        for s in PODS:
            for d in PODS:
                if self._match(s, fns, fpod) and self._match(d, tns, tpod):
                    self.m[(s, d)] = v
        return self

    def all_ingress(self, pod, v):
        for s in PODS:
            self.m[(s, pod)] = v
        return self

    def all_egress(self, pod, v):
        for d in PODS:
            self.m[(pod, d)] = v
        return self

    def expect(self, src, dst, v):
        self.m[(src, dst)] = v
        return self

    def final(self):
        out = dict(self.m)
        for p in PODS:
            out[(p, p)] = True  # a pod always reaches itself
        return out


def R(default=True):
    return Reach(default)


class Step:
    def __init__(self, policies, tables, base=None, note=None):
        self.policies = policies
        self.tables = tables  # [(port, proto, Reach)]
        self.base = base      # list of mutations of the base objects, or None
        self.note = note


class Scenario:
    def __init__(self, name, source, title, steps, note=None):
        self.name = name
        self.source = source
        self.title = title
        self.steps = steps if isinstance(steps, list) else [steps]
        self.note = note


# ---------------------------------------------------------------- scenarios

def scenarios():
    S = []
    add = S.append
    a = ml(pod="a")

    # ---- network_policy.go, "NetworkPolicy between server and client" (TCP)
    add(Scenario("default-deny-ingress", NP, "should support a 'default-deny-ingress' policy",
                 Step([gen("deny-ingress", {}, ingress=[])],
                      [(80, "TCP", R().peer(tns="x"))])))
    add(Scenario("default-deny-all", NP, "should support a 'default-deny-all' policy",
                 Step([gen("deny-all", {}, ingress=[], egress=[])],
                      [(80, "TCP", R().peer(tns="x").peer(fns="x"))])))
    add(Scenario("allow-from-pod-in-namespace", NP,
                 "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
                 Step([gen("x-a-allows-x-b", a, ingress=[irule([peer(pod=ml(pod="b"))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True))])))
    add(Scenario("allow-ingress-for-target", NP,
                 "should enforce policy to allow ingress traffic for a target",
                 Step([gen("deny-all", {}, ingress=[]),
                       gen("allow-all-to-a", a, ingress=[irule([peer(pod={}, ns={})])])],
                      [(80, "TCP", R().all_ingress("x/a", True).all_ingress("x/b", False)
                        .all_ingress("x/c", False))])))
    add(Scenario("allow-from-all-namespaces", NP,
                 "should enforce policy to allow ingress traffic from pods in all namespaces",
                 Step([gen("allow-from-another-ns", a, ingress=[irule([peer(ns=ml())])])],
                      [(80, "TCP", R())])))
    add(Scenario("allow-from-other-namespace", NP,
                 "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
                 Step([gen("allow-client-a-via-ns-selector", a, ingress=[irule([peer(ns=nsname("y"))])])],
                      [(80, "TCP", R().peer(fns="x", tns="x", tpod="a").peer(fns="z", tns="x", tpod="a"))])))
    add(Scenario("podselector-matchexpressions", NP,
                 "should enforce policy based on PodSelector with MatchExpressions",
                 Step([gen("x-a-allows-x-b", a, ingress=[irule([peer(pod=me("pod", "In", ["b"]))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True))])))
    add(Scenario("nsselector-matchexpressions", NP,
                 "should enforce policy based on NamespaceSelector with MatchExpressions",
                 Step([gen("allow-ns-y-match-selector", a,
                           ingress=[irule([peer(ns=me(NS_NAME, "In", ["y"]))])])],
                      [(80, "TCP", R().peer(fns="x", tns="x", tpod="a").peer(fns="z", tns="x", tpod="a"))])))
    add(Scenario("podselector-or-nsselector", NP,
                 "should enforce policy based on PodSelector or NamespaceSelector",
                 Step([gen("allow-ns-y-match-selector", a,
                           ingress=[irule([peer(ns=me(NS_NAME, "NotIn", ["x"])),
                                           peer(pod=ml(pod="b"))])])],
                      [(80, "TCP", R().expect("x/a", "x/a", False).expect("x/c", "x/a", False))])))
    add(Scenario("podselector-and-nsselector", NP,
                 "should enforce policy based on PodSelector and NamespaceSelector",
                 Step([gen("allow-ns-y-podselector-and-nsselector", a,
                           ingress=[irule([peer(ns=me(NS_NAME, "NotIn", ["x"]), pod=ml(pod="b"))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("y/b", "x/a", True)
                        .expect("z/b", "x/a", True))])))
    add(Scenario("multiple-podselectors-and-nsselectors", NP,
                 "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
                 Step([gen("allow-ns-y-z-pod-b-c", a,
                           ingress=[irule([peer(ns=me(NS_NAME, "NotIn", ["x"]),
                                                pod=me("pod", "In", ["b", "c"]))])])],
                      [(80, "TCP", R().peer(fns="x", tns="x", tpod="a").expect("y/a", "x/a", False)
                        .expect("z/a", "x/a", False))])))
    add(Scenario("any-podselectors", NP, "should enforce policy based on any PodSelectors",
                 Step([gen("allow-ns-x-pod-b-c", a,
                           ingress=[irule([peer(pod=ml(pod="b")), peer(pod=ml(pod="c"))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True)
                        .expect("x/c", "x/a", True))])))
    add(Scenario("pod-in-other-namespace", NP,
                 "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
                 Step([gen("allow-ns-y-pod-a-via-namespace-pod-selector", a,
                           ingress=[irule([peer(ns=nsname("y"), pod=ml(pod="a"))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("y/a", "x/a", True))])))
    ns_y_81 = lambda: R().peer(fns="x", tns="x", tpod="a").peer(fns="y", tns="x", tpod="a", v=True) \
        .peer(fns="z", tns="x", tpod="a")
    add(Scenario("ports", NP, "should enforce policy based on Ports",
                 Step([gen("allow-client-a-via-ns-selector", a,
                           ingress=[irule([peer(ns=nsname("y"))], [port(81, "TCP")])])],
                      [(81, "TCP", ns_y_81())])))
    p81 = gen("allow-client-a-via-ns-selector", a, ingress=[irule([peer(ns=nsname("y"))], [port(81, "TCP")])])
    p80 = gen("allow-client-a-via-ns-selector-80", a, ingress=[irule([peer(ns=nsname("y"))], [port(80, "TCP")])])
    add(Scenario("stacked-overlapping-podselectors", NP,
                 "should enforce multiple, stacked policies with overlapping podSelectors",
                 [Step([p81], [(81, "TCP", ns_y_81()), (80, "TCP", R().all_ingress("x/a", False))]),
                  Step([p81, p80], [(80, "TCP", ns_y_81())], note="adds the port 80 policy")]))
    add(Scenario("allow-all", NP, "should support allow-all policy",
                 Step([gen("allow-all", ml(), ingress=[{}])], [(80, "TCP", R()), (81, "TCP", R())])))
    add(Scenario("ingress-one-named-port", NP, "should allow ingress access on one named port",
                 Step([gen("allow-all", ml(), ingress=[irule(ports=[port("serve-81-tcp")])])],
                      [(81, "TCP", R()), (80, "TCP", R().peer(tns="x"))])))
    add(Scenario("ingress-from-namespace-named-port", NP,
                 "should allow ingress access from namespace on one named port",
                 Step([gen("allow-client-a-via-ns-selector-80", a,
                           ingress=[irule([peer(ns=nsname("y"))], [port("serve-80-tcp", "TCP")])])],
                      [(80, "TCP", R().peer(fns="x", tns="x", tpod="a").peer(fns="z", tns="x", tpod="a")),
                       (81, "TCP", R().all_ingress("x/a", False))])))
    add(Scenario("egress-one-named-port", NP, "should allow egress access on one named port",
                 Step([gen("allow-egress", ml(), egress=[erule(ports=[port("serve-80-tcp")])])],
                      [(80, "TCP", R()), (81, "TCP", R().peer(fns="x"))])))
    add(Scenario("updated-policy", NP, "should enforce updated policy",
                 [Step([gen("allow-all-mutate-to-deny-all", ml(), ingress=[{}])], [(81, "TCP", R())]),
                  Step([gen("allow-all-mutate-to-deny-all", ml(), ingress=[])],
                       [(81, "TCP", R().peer(tns="x"))], note="the policy's ingress rules are emptied")]))
    upd_ns = gen("allow-client-a-via-ns-selector", a, ingress=[irule([peer(ns=ml(ns2="updated"))])])
    add(Scenario("ingress-from-updated-namespace", NP, "should allow ingress access from updated namespace",
                 [Step([upd_ns], [(80, "TCP", R().all_ingress("x/a", False))]),
                  Step([upd_ns], [(80, "TCP", R().all_ingress("x/a", False).peer(fns="y", v=True))],
                       base=[set_ns_labels("y", {"ns2": "updated"})])]))
    upd_pod = gen("allow-client-a-via-pod-selector", a,
                  ingress=[irule([peer(pod=ml(pod="b", pod2="updated"))])])
    add(Scenario("ingress-from-updated-pod", NP, "should allow ingress access from updated pod",
                 [Step([upd_pod], [(80, "TCP", R().all_ingress("x/a", False))]),
                  Step([upd_pod], [(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True))],
                       base=[set_pod_labels("x/b", {"pod2": "updated"})])]))
    add(Scenario("deny-ingress-other-namespaces", NP, "should deny ingress from pods on other namespaces",
                 Step([gen("deny-empty-policy", {}, ingress=[irule([peer(pod=ml())])])],
                      [(80, "TCP", R().peer(fns="y", tns="x").peer(fns="z", tns="x"))])))
    iso = gen("deny-ingress-via-label-selector", ml(target="isolated"), ingress=[])
    add(Scenario("deny-ingress-to-updated-pod", NP, "should deny ingress access to updated pod",
                 [Step([iso], [(80, "TCP", R())]),
                  Step([iso], [(80, "TCP", R().all_ingress("x/a", False))],
                       base=[set_pod_labels("x/a", {"target": "isolated"})])]))
    add(Scenario("deny-egress-pod-selector", NP, "should deny egress from pods based on PodSelector",
                 Step([gen("deny-egress-pod-a", a, egress=[])], [(80, "TCP", R().all_egress("x/a", False))])))
    add(Scenario("deny-egress-namespace", NP, "should deny egress from all pods in a namespace",
                 Step([gen("deny-egress-ns-x", {}, egress=[])], [(80, "TCP", R().peer(fns="x"))])))
    add(Scenario("ingress-egress-together", NP, "should work with Ingress, Egress specified together",
                 Step([gen("allow-client-a-via-pod-selector", a, ingress=[irule([peer(pod=ml(pod="b"))])],
                           egress=[erule(ports=[port(80)])], order=("Egress", "Ingress"))],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True)),
                       (81, "TCP", R().all_ingress("x/a", False).all_egress("x/a", False)
                        .expect("x/b", "x/a", True))])))
    xa_in = irule([peer(ns=nsname("x"), pod=ml(pod="a"))])
    add(Scenario("deny-egress-client-side", NP,
                 "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
                 Step([gen("allow-to-ns-y-pod-a", a, egress=[erule([peer(ns=nsname("y"), pod=ml(pod="a"))])]),
                       gen("allow-from-xa-on-ya-match-selector", a, ingress=[xa_in], ns="y"),
                       gen("allow-from-xa-on-yb-match-selector", ml(pod="b"), ingress=[xa_in], ns="y")],
                      [(80, "TCP", R().peer(fns="x", fpod="a").peer(tns="y", tpod="a")
                        .peer(fns="x", fpod="a", tns="y", tpod="a", v=True).peer(tns="y", tpod="b"))])))
    add(Scenario("egress-to-other-namespace-pod", NP,
                 "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
                 Step([gen("allow-to-ns-y-pod-a", a, egress=[erule([peer(ns=nsname("y"), pod=ml(pod="a"))])])],
                      [(80, "TCP", R().all_egress("x/a", False).expect("x/a", "y/a", True))])))
    add(Scenario("ingress-any-port-one-protocol", NP,
                 "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
                 Step([gen("allow-ingress-by-proto", a, ingress=[irule(ports=[port(proto="TCP")])])],
                      [(80, "TCP", R()), (80, "UDP", R().peer(tns="x", tpod="a"))])))
    add(Scenario("ingress-allow-all-precedence", NP,
                 "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
                 [Step([gen("allow-ingress-port-80", ml(), ingress=[irule(ports=[port(80)])])],
                       [(81, "TCP", R().peer(tns="x"))]),
                  Step([gen("allow-ingress-port-80", ml(), ingress=[irule(ports=[port(80)])]),
                        gen("allow-ingress", ml(), ingress=[{}])], [(81, "TCP", R())])]))
    add(Scenario("egress-allow-all-precedence", NP,
                 "should enforce multiple egress policies with egress allow-all policy taking precedence",
                 [Step([gen("allow-egress-port-80", ml(), egress=[erule(ports=[port(80)])])],
                       [(81, "TCP", R().peer(fns="x"))]),
                  Step([gen("allow-egress-port-80", ml(), egress=[erule(ports=[port(80)])]),
                        gen("allow-egress", ml(), egress=[{}])], [(81, "TCP", R())])]))
    add(Scenario("stop-enforcing-after-delete", NP, "should stop enforcing policies after they are deleted",
                 [Step([gen("deny-all", {}, ingress=[], egress=[])],
                       [(80, "TCP", R().peer(fns="x").peer(tns="x"))]),
                  Step([], [(80, "TCP", R())], note="all policies deleted")]))
    add(Scenario("egress-to-cidr", NP, "should allow egress access to server in CIDR block",
                 Step([gen("allow-client-a-via-cidr-egress-rule", a,
                           egress=[erule([peer(cidr=ip("y/b") + "/32")])])],
                      [(80, "TCP", R().all_egress("x/a", False).expect("x/a", "y/b", True))])))
    # upstream writes x/a's IP with a /4 mask; 10.244.1.10/4 is 0.0.0.0/4
    exc = gen("allow-client-a-via-cidr-egress-rule", a,
              egress=[erule([peer(cidr="0.0.0.0/4", except_=[ip("x/b") + "/32"])])])
    add(Scenario("egress-cidr-except", NP,
                 "should enforce except clause while egress access to server in CIDR block",
                 Step([exc], [(80, "TCP", R().expect("x/a", "x/b", False))])))
    add(Scenario("cidr-and-except-overlap", NP,
                 "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
                 [Step([exc], [(80, "TCP", R().expect("x/a", "x/b", False))]),
                  Step([gen("allow-client-a-via-cidr-egress-rule", a,
                            egress=[erule([peer(cidr=ip("x/b") + "/32")])])],
                       [(80, "TCP", R().all_egress("x/a", False).expect("x/a", "x/b", True))],
                       note="the policy is updated in place to allow x/b's /32")]))
    eg_t = gen("allow-egress-for-target", a, egress=[{}])
    add(Scenario("ingress-egress-independent", NP,
                 "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
                 [Step([eg_t], [(80, "TCP", R())]),
                  Step([eg_t, gen("deny-ingress-via-label-selector", a, ingress=[])],
                       [(80, "TCP", R().all_ingress("x/a", False))])]))
    add(Scenario("sctp-not-tcp", NP,
                 "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
                 Step([gen("deny-ingress", {}, ingress=[]),
                       gen("allow-only-sctp-ingress-on-port-81", a, ingress=[irule(ports=[port(81, "SCTP")])])],
                      [(81, "TCP", R().peer(tns="x"))])))
    add(Scenario("sctp-policy-isolates", NP,
                 "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
                 Step([gen("allow-only-sctp-ingress-on-port-80", a, ingress=[irule(ports=[port(80, "SCTP")])])],
                      [(81, "TCP", R().all_ingress("x/a", False))])))
    add(Scenario("udp-only-denies-tcp", NP, "should not allow access by TCP when a policy specifies only UDP",
                 Step([gen("allow-only-udp-ingress-on-port-81", a, ingress=[irule(ports=[port(81, "UDP")])])],
                      [(81, "TCP", R().all_ingress("x/a", False))])))
    add(Scenario("default-ns-label-matchlabels", NP,
                 "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
                 Step([gen("allow-client-a-via-ns-selector-for-immutable-ns-label", a,
                           ingress=[irule([peer(ns=nsname("y"))])])],
                      [(80, "TCP", R().peer(fns="x", tns="x", tpod="a").peer(fns="z", tns="x", tpod="a"))])))
    add(Scenario("default-ns-label-matchexpressions", NP,
                 "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
                 Step([gen("allow-ns-y-match-selector-for-immutable-ns-label", a,
                           egress=[erule([peer(ns=me(NS_NAME, "NotIn", ["y"]))])])],
                      [(80, "TCP", R().peer(fns="x", fpod="a", tns="y"))])))

    # ---- network_policy.go, "NetworkPolicy between server and client using UDP"
    add(Scenario("udp-default-deny-ingress", NP, "[UDP] should support a 'default-deny-ingress' policy",
                 Step([gen("deny-all", {}, ingress=[])], [(80, "UDP", R().peer(tns="x"))])))
    add(Scenario("udp-ports", NP, "[UDP] should enforce policy based on Ports",
                 Step([gen("allow-ingress-on-port-81-ns-x", a,
                           ingress=[irule([peer(ns=nsname("y"))], [port(81, "UDP")])])],
                      [(81, "UDP", R().peer(fns="x", tns="x", tpod="a").peer(fns="z", tns="x", tpod="a"))])))
    add(Scenario("udp-pod-in-other-namespace", NP,
                 "[UDP] should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
                 Step([gen("allow-ns-y-pod-a-via-namespace-pod-selector", a,
                           ingress=[irule([peer(ns=nsname("y"), pod=ml(pod="a"))])])],
                      [(80, "UDP", R().all_ingress("x/a", False).expect("y/a", "x/a", True))])))

    # ---- network_policy.go, "NetworkPolicy between server and client using SCTP"
    add(Scenario("sctp-default-deny-ingress", NP, "[SCTP] should support a 'default-deny-ingress' policy",
                 Step([gen("deny-all", {}, ingress=[])], [(80, "SCTP", R().peer(tns="x"))])))
    add(Scenario("sctp-ports", NP, "[SCTP] should enforce policy based on Ports",
                 Step([gen("allow-ingress-on-port-81-ns-x", a,
                           ingress=[irule([peer(ns=nsname("y"))], [port(81, "SCTP")])])],
                      [(81, "SCTP", R().peer(fns="x", tns="x", tpod="a").peer(fns="z", tns="x", tpod="a"))])))
    add(Scenario("sctp-pod-in-other-namespace", NP,
                 "[SCTP] should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
                 Step([gen("allow-ns-y-pod-a-via-namespace-pod-selector", a,
                           ingress=[irule([peer(ns=nsname("y"), pod=ml(pod="a"))])])],
                      [(80, "SCTP", R().all_ingress("x/a", False).expect("y/a", "x/a", True))])))

    # ---- network_legacy.go: one server, client pods. Mapped onto the model:
    # server = x/a (selected by pod=a), "client-a" = x/b, "client-b" = x/c,
    # "namespace-b" = y, "namespace-c" = z, label ns-name -> ns. The legacy
    # policies mostly omit policyTypes, so they also test the API defaults.
    add(Scenario("legacy-default-deny-ingress", LEG, "should support a 'default-deny-ingress' policy",
                 Step([policy("deny-ingress", {}, ingress=[])], [(80, "TCP", R().peer(tns="x"))])))
    add(Scenario("legacy-default-deny-all", LEG, "should support a 'default-deny-all' policy",
                 Step([policy("default-deny-all", {}, ingress=[], egress=[], types=["Egress", "Ingress"])],
                      [(80, "TCP", R().peer(tns="x").peer(fns="x"))])))
    add(Scenario("legacy-allow-from-pod-in-namespace", LEG,
                 "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
                 Step([policy("allow-client-a-via-pod-selector", a, ingress=[irule([peer(pod=ml(pod="b"))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True))])))
    add(Scenario("legacy-allow-from-other-namespace", LEG,
                 "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
                 Step([policy("allow-ns-b-via-namespace-selector", a, ingress=[irule([peer(ns=ml(ns="y"))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).peer(fns="y", tns="x", tpod="a", v=True))])))
    add(Scenario("legacy-podselector-matchexpressions", LEG,
                 "should enforce policy based on PodSelector with MatchExpressions",
                 Step([policy("allow-client-a-via-pod-selector-with-match-expressions", a,
                              ingress=[irule([peer(pod=me("pod", "In", ["b"]))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True))])))
    add(Scenario("legacy-nsselector-notin", LEG,
                 "should enforce policy based on NamespaceSelector with MatchExpressions",
                 Step([policy("allow-any-ns-different-than-ns-a-via-ns-selector-with-match-expressions", a,
                              ingress=[irule([peer(ns=me("ns", "NotIn", ["z"]))])])],
                      [(80, "TCP", R().peer(fns="z", tns="x", tpod="a"))])))
    add(Scenario("legacy-podselector-or-nsselector", LEG,
                 "should enforce policy based on PodSelector or NamespaceSelector",
                 Step([policy("allow-ns-b-via-namespace-selector-or-client-b-via-pod-selector", a,
                              ingress=[irule([peer(pod=ml(pod="c")), peer(ns=ml(ns="y"))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("x/c", "x/a", True)
                        .peer(fns="y", tns="x", tpod="a", v=True))])))
    add(Scenario("legacy-podselector-and-nsselector", LEG,
                 "should enforce policy based on PodSelector and NamespaceSelector",
                 Step([policy("allow-client-b-in-ns-b-via-ns-selector-and-pod-selector", a,
                              ingress=[irule([peer(pod=ml(pod="c"), ns=ml(ns="y"))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("y/c", "x/a", True))])))
    add(Scenario("legacy-pod-in-other-namespace", LEG,
                 "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
                 Step([policy("allow-ns-b-client-a-via-namespace-pod-selector", a,
                              ingress=[irule([peer(ns=ml(ns="y"), pod=ml(pod="b"))])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("y/b", "x/a", True))])))
    add(Scenario("legacy-ports", LEG, "should enforce policy based on Ports",
                 Step([policy("allow-ingress-on-port-81", a, ingress=[irule(ports=[port(81)])])],
                      [(80, "TCP", R().all_ingress("x/a", False)), (81, "TCP", R())])))
    add(Scenario("legacy-stacked-policies", LEG,
                 "should enforce multiple, stacked policies with overlapping podSelectors",
                 Step([policy("allow-ingress-on-port-80", a, ingress=[irule(ports=[port(80)])]),
                       policy("allow-ingress-on-port-81", a, ingress=[irule(ports=[port(81)])])],
                      [(80, "TCP", R()), (81, "TCP", R())])))
    add(Scenario("legacy-allow-all", LEG, "should support allow-all policy",
                 Step([policy("allow-all", ml(), ingress=[{}])], [(80, "TCP", R()), (81, "TCP", R())])))
    add(Scenario("legacy-ingress-one-named-port", LEG, "should allow ingress access on one named port",
                 Step([policy("allow-client-a-via-named-port-ingress-rule", a,
                              ingress=[irule(ports=[port("serve-80-tcp")])])],
                      [(80, "TCP", R()), (81, "TCP", R().all_ingress("x/a", False))])))
    add(Scenario("legacy-ingress-from-namespace-named-port", LEG,
                 "should allow ingress access from namespace on one named port",
                 Step([policy("allow-client-in-ns-b-via-named-port-ingress-rule", a,
                              ingress=[irule([peer(ns=ml(ns="y"))], [port("serve-80-tcp")])])],
                      [(80, "TCP", R().all_ingress("x/a", False).peer(fns="y", tns="x", tpod="a", v=True))])))
    add(Scenario("legacy-egress-one-named-port", LEG, "should allow egress access on one named port",
                 Step([policy("allow-client-a-via-named-port-egress-rule", ml(pod="b"),
                              egress=[erule(ports=[port("serve-80-tcp")])])],
                      [(80, "TCP", R().all_ingress("x/b", False)),
                       (81, "TCP", R().all_ingress("x/b", False).all_egress("x/b", False))]),
                 note="The policy has egress rules and no policyTypes, so it defaults to "
                      "[Ingress, Egress]: x/b is also isolated for ingress with no ingress rule. "
                      "Upstream only probes x/b's egress."))
    upd1 = policy("allow-ingress", a, ingress=[irule([peer(pod=ml(pod="b"))], [port(80)])])
    upd2 = policy("allow-ingress", a, ingress=[irule([peer(pod=ml(pod="c"))], [port(81)])])
    add(Scenario("legacy-updated-policy", LEG, "should enforce updated policy",
                 [Step([upd1], [(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True)),
                                (81, "TCP", R().all_ingress("x/a", False))]),
                  Step([upd2], [(80, "TCP", R().all_ingress("x/a", False)),
                                (81, "TCP", R().all_ingress("x/a", False).expect("x/c", "x/a", True))],
                       note="the policy is updated in place: from x/c on port 81")]))
    nsupd = policy("allow-ns-b-via-namespace-selector", a, ingress=[irule([peer(ns=ml(ns="y-updated"))])])
    add(Scenario("legacy-ingress-from-updated-namespace", LEG, "should allow ingress access from updated namespace",
                 [Step([nsupd], [(80, "TCP", R().all_ingress("x/a", False))]),
                  Step([nsupd], [(80, "TCP", R().all_ingress("x/a", False).peer(fns="y", tns="x", tpod="a", v=True))],
                       base=[set_ns_labels("y", {"ns": "y-updated"})])]))
    dne = policy("allow-pod-b-via-pod-selector", a, ingress=[irule([peer(pod=me("pod", "DoesNotExist"))])])
    add(Scenario("legacy-ingress-from-updated-pod", LEG, "should allow ingress access from updated pod",
                 [Step([dne], [(80, "TCP", R().all_ingress("x/a", False))]),
                  Step([dne], [(80, "TCP", R().all_ingress("x/a", False).expect("x/b", "x/a", True))],
                       base=[set_pod_labels("x/b", {}, replace=True)])]))
    isol = policy("deny-ingress-via-isolated-label-selector",
                  {"matchLabels": {"pod": "a"}, "matchExpressions": [{"key": "isolated", "operator": "Exists"}]},
                  ingress=[], types=["Ingress"])
    add(Scenario("legacy-deny-ingress-to-updated-pod", LEG, "should deny ingress access to updated pod",
                 [Step([isol], [(80, "TCP", R())]),
                  Step([isol], [(80, "TCP", R().all_ingress("x/a", False))],
                       base=[set_pod_labels("x/a", {"isolated": ""})])]))
    add(Scenario("legacy-ingress-egress-together", LEG, "should work with Ingress,Egress specified together",
                 Step([policy("ingress-egress-rule", {}, types=["Ingress", "Egress"],
                              ingress=[irule([peer(ns=ml(ns="y"))], [port(80)])],
                              egress=[erule([peer(ns=ml(ns="y"))], [port(80)])])],
                      [(80, "TCP", R().peer(tns="x").peer(fns="x").peer(fns="y", tns="x", v=True)
                        .peer(fns="x", tns="y", v=True)),
                       (81, "TCP", R().peer(tns="x").peer(fns="x"))])))
    add(Scenario("legacy-egress-to-other-namespace-pod", LEG,
                 "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
                 Step([policy("allow-to-ns-b-server-a-via-namespace-selector", ml(pod="b"), types=["Egress"],
                              egress=[erule([peer(ns=ml(ns="y"), pod=ml(pod="a"))])])],
                      [(80, "TCP", R().all_egress("x/b", False).expect("x/b", "y/a", True))])))
    onlyb = policy("allow-from-client-b-pod-selector", a, types=["Ingress"], ingress=[irule([peer(pod=ml(pod="c"))])])
    add(Scenario("legacy-ingress-allow-all-precedence", LEG,
                 "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
                 [Step([onlyb], [(80, "TCP", R().all_ingress("x/a", False).expect("x/c", "x/a", True))]),
                  Step([onlyb, policy("allow-all", ml(), types=["Ingress"], ingress=[{}])], [(80, "TCP", R())])]))
    toa = policy("allow-to-server-a-pod-selector", ml(pod="b"), types=["Egress"], egress=[erule([peer(pod=a)])])
    add(Scenario("legacy-egress-allow-all-precedence", LEG,
                 "should enforce multiple egress policies with egress allow-all policy taking precedence",
                 [Step([toa], [(80, "TCP", R().all_egress("x/b", False).expect("x/b", "x/a", True))]),
                  Step([toa, policy("allow-all", ml(), types=["Egress"], egress=[{}])], [(80, "TCP", R())])]))
    deny = policy("deny-all", {}, types=["Ingress"], ingress=[])
    allow_b = policy("allow-from-client-a-pod-selector", a, types=["Ingress"], ingress=[irule([peer(pod=ml(pod="b"))])])
    add(Scenario("legacy-stop-enforcing-after-delete", LEG, "should stop enforcing policies after they are deleted",
                 [Step([deny], [(80, "TCP", R().peer(tns="x"))]),
                  Step([deny, allow_b], [(80, "TCP", R().peer(tns="x").expect("x/b", "x/a", True))]),
                  Step([deny], [(80, "TCP", R().peer(tns="x"))], note="the allow policy is deleted"),
                  Step([], [(80, "TCP", R())], note="the deny policy is deleted")]))
    add(Scenario("legacy-egress-to-cidr", LEG, "should allow egress access to server in CIDR block",
                 Step([policy("allow-client-a-via-cidr-egress-rule", ml(pod="b"), types=["Egress"],
                              egress=[erule([peer(cidr=ip("x/a") + "/32")])])],
                      [(80, "TCP", R().all_egress("x/b", False).expect("x/b", "x/a", True))])))
    exc24 = policy("deny-client-a-via-except-cidr-egress-rule", ml(pod="b"), types=["Egress"],
                   egress=[erule([peer(cidr="10.244.1.0/24", except_=[ip("x/a") + "/32"])])])
    add(Scenario("legacy-egress-cidr-except", LEG, "should enforce except clause while egress access to server in CIDR block",
                 Step([exc24], [(80, "TCP", R().all_egress("x/b", False).expect("x/b", "x/c", True))])))
    a32 = policy("allow-client-a-via-cidr-egress-rule", ml(pod="b"), types=["Egress"],
                 egress=[erule([peer(cidr=ip("x/a") + "/32")])])
    both = R().all_egress("x/b", False).expect("x/b", "x/c", True).expect("x/b", "x/a", True)
    add(Scenario("legacy-cidr-and-except-overlap", LEG,
                 "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
                 [Step([exc24], [(80, "TCP", R().all_egress("x/b", False).expect("x/b", "x/c", True))]),
                  Step([exc24, a32], [(80, "TCP", both)]),
                  Step([a32], [(80, "TCP", R().all_egress("x/b", False).expect("x/b", "x/a", True))],
                       note="the except policy is deleted"),
                  Step([a32, exc24], [(80, "TCP", both)], note="the except policy is created again")]))
    add(Scenario("legacy-ingress-egress-independent", LEG,
                 "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
                 Step([policy("allow-pod-a-to-pod-b-using-pod-selector", a, types=["Egress"],
                              egress=[erule([peer(pod=ml(pod="b"))])]),
                       policy("deny-pod-b-to-pod-a-pod-selector", a, types=["Ingress"], ingress=[])],
                      [(80, "TCP", R().all_egress("x/a", False).expect("x/a", "x/b", True)
                        .all_ingress("x/a", False))])))
    add(Scenario("legacy-sctp-only-denies-tcp", LEG, "should not allow access by TCP when a policy specifies only SCTP",
                 Step([policy("allow-only-sctp-ingress-on-port-80", a, ingress=[irule(ports=[port(80, "SCTP")])])],
                      [(80, "TCP", R().all_ingress("x/a", False))])))
    add(Scenario("legacy-sctp-default-deny", LEG, "[SCTP] should support a 'default-deny' policy",
                 Step([policy("deny-all", {}, ingress=[])], [(80, "SCTP", R().peer(tns="x"))])))
    add(Scenario("legacy-sctp-ports", LEG, "[SCTP] should enforce policy based on Ports",
                 Step([policy("allow-ingress-on-port-81", a, ingress=[irule(ports=[port(81, "SCTP")])])],
                      [(80, "SCTP", R().all_ingress("x/a", False)), (81, "SCTP", R())])))
    add(Scenario("legacy-sctp-pod-in-other-namespace", LEG,
                 "[SCTP] should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
                 Step([policy("allow-ns-b-client-a-via-namespace-pod-selector", a,
                              ingress=[irule([peer(ns=ml(ns="y"), pod=ml(pod="b"))])])],
                      [(80, "SCTP", R().all_ingress("x/a", False).expect("y/b", "x/a", True))])))

    # ---- vakt additions: v1 features the upstream suites do not probe
    add(Scenario("vakt-ingress-endport-range", VAKT, "ingress port range 81-90 (endPort) from namespace y",
                 Step([policy("allow-81-90-from-y", a, types=["Ingress"],
                              ingress=[irule([peer(ns=nsname("y"))], [port(81, "TCP", 90)])])],
                      [(80, "TCP", R().all_ingress("x/a", False)),
                       (81, "TCP", R().peer(fns="x", tns="x", tpod="a").peer(fns="z", tns="x", tpod="a"))])))
    add(Scenario("vakt-egress-endport-range", VAKT, "egress port range 1-80 (endPort), TCP only",
                 Step([policy("allow-egress-1-80", a, types=["Egress"], egress=[erule(ports=[port(1, None, 80)])])],
                      [(80, "TCP", R()), (81, "TCP", R().all_egress("x/a", False)),
                       (80, "UDP", R().all_egress("x/a", False))])))
    add(Scenario("vakt-egress-named-port-udp", VAKT, "egress to the named port serve-80-udp (protocol UDP)",
                 Step([policy("allow-egress-serve-80-udp", a, types=["Egress"],
                              egress=[erule(ports=[port("serve-80-udp", "UDP")])])],
                      [(80, "UDP", R()), (81, "UDP", R().all_egress("x/a", False)),
                       (80, "TCP", R().all_egress("x/a", False))])))
    add(Scenario("vakt-ingress-ipblock-except", VAKT, "ingress from y's /24 except y/b",
                 Step([policy("allow-from-y-subnet-but-y-b", a, types=["Ingress"],
                              ingress=[irule([peer(cidr="10.244.2.0/24", except_=[ip("y/b") + "/32"])])])],
                      [(80, "TCP", R().all_ingress("x/a", False).expect("y/a", "x/a", True)
                        .expect("y/c", "x/a", True))])))
    return S


# ---------------------------------------------------------------- writing

def render_tables(step):
    out = []
    for portnum, proto, reach in step.tables:
        out.append(matrix.format_table(portnum, proto, PODS, reach.final()))
    return "\n".join(out)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def crosscheck(sc, k, step, objs):
    """Every expected cell must equal the naive evaluator's answer."""
    cl = refeval.Cluster(objs)
    errs = []
    for portnum, proto, reach in step.tables:
        exp = reach.final()
        for s in PODS:
            for d in PODS:
                got = cl.allowed(s, d, portnum, proto)
                if got != exp[(s, d)]:
                    errs.append("%s step %d: %s -> %s %d/%s: expected %s, reference evaluator %s" %
                                (sc.name, k, s, d, portnum, proto,
                                 "allowed" if exp[(s, d)] else "denied",
                                 "allowed" if got else "denied"))
    return errs


def check_reader(path):
    try:
        import yaml
    except ImportError:
        return []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    ref = [d for d in yaml.safe_load_all(text) if d is not None]
    mine = matrix.parse_yaml_documents(text, path)
    return [] if ref == mine else ["%s: matrix.py reader disagrees with PyYAML" % path]


def generate(root):
    base = base_objects()
    sdir = os.path.join(root, "scenarios")
    if os.path.isdir(sdir):
        shutil.rmtree(sdir)
    write(os.path.join(root, "base.yaml"),
          ydocs(base, "# Generated by gen_scenarios.py: the upstream netpol e2e model.\n"
                      "# Namespaces x, y, z (label ns=<name>; kubernetes.io/metadata.name is\n"
                      "# added by the loader as by the API server), pods a, b, c in each\n"
                      "# (label pod=<name>), ports 80 and 81 on TCP, UDP and SCTP.\n"))
    errs, index = [], []
    all_s = scenarios()
    for i, sc in enumerate(all_s, 1):
        name = "%02d-%s" % (i, sc.name)
        index.append((name, sc))
        multi = len(sc.steps) > 1
        for k, st in enumerate(sc.steps, 1):
            d = os.path.join(sdir, name, "steps", str(k)) if multi else os.path.join(sdir, name)
            hdr = "# %s: %s\n# upstream: %s: %s\n" % (name, "step %d of %d" % (k, len(sc.steps))
                                                      if multi else "single step", sc.source, sc.title)
            if st.note:
                hdr += "# this step: %s\n" % st.note
            if sc.note:
                hdr += "# note: %s\n" % sc.note
            write(os.path.join(d, "policies.yaml"),
                  ydocs(st.policies, hdr) if st.policies else hdr + "# (no policies)\n")
            objs = copy.deepcopy(base)
            if st.base:
                for mut in st.base:
                    mut(objs)
                write(os.path.join(d, "base.yaml"),
                      ydocs(objs, "# %s step %d: base.yaml with %s\n" %
                            (name, k, "; ".join(m.describe for m in st.base))))
            write(os.path.join(d, "expected.txt"), render_tables(st))
            for f in ("policies.yaml", "base.yaml"):
                if os.path.exists(os.path.join(d, f)):
                    errs += check_reader(os.path.join(d, f))
            errs += crosscheck(sc, k, st, objs + st.policies)
            # the files, read back, must describe the same objects
            step = matrix.step_at(d, root)
            if step.objects() != objs + st.policies:
                errs.append("%s step %d: files do not read back as written" % (name, k))
    errs += check_reader(os.path.join(root, "base.yaml"))
    write(os.path.join(sdir, "INDEX.md"), render_index(index))
    return errs


def render_index(index):
    out = ["# Scenario index (generated by gen_scenarios.py)", "",
           "| dir | source | upstream test (`It`) | steps | tables |", "|---|---|---|---|---|"]
    for name, sc in index:
        tables = sorted({"%d/%s" % (p, pr) for st in sc.steps for p, pr, _ in st.tables})
        out.append("| `%s` | %s | %s | %d | %s |" % (name, sc.source, sc.title.replace("|", "\\|"),
                                                   len(sc.steps), ", ".join(tables)))
    return "\n".join(out) + "\n"


def main(argv):
    if "--check" in argv:
        with tempfile.TemporaryDirectory() as tmp:
            errs = generate(tmp)
            diffs = []
            for dirpath, _, files in os.walk(tmp):
                for f in files:
                    rel = os.path.relpath(os.path.join(dirpath, f), tmp)
                    mine = os.path.join(HERE, rel)
                    if not os.path.exists(mine) or not filecmp.cmp(mine, os.path.join(tmp, rel), shallow=False):
                        diffs.append(rel)
            for e in errs:
                print("ERROR", e)
            for d in diffs:
                print("STALE", d)
            return 1 if errs or diffs else 0
    errs = generate(HERE)
    for e in errs:
        print("ERROR", e)
    n = len(scenarios())
    print("%d scenarios written, %d errors" % (n, len(errs)))
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
