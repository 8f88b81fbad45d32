#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A deliberately naive reference evaluator of networking.k8s.io/v1 NetworkPolicy.

It loops over every policy and rule for every question, the opposite of how
vakt computes a verdict, and exists only to cross-check the expected tables
of the scenarios (which are transcribed from the upstream e2e expectations)
when gen_scenarios.py writes them. Two independent derivations that agree
make a wrong expectation unlikely. It is not used by the vakt tests
themselves: those compare vakt against expected.txt.
"""

import ipaddress

NS_NAME_LABEL = "kubernetes.io/metadata.name"


def selector_matches(sel, labels):
    """LabelSelector semantics; None never matches, {} matches everything."""
    if sel is None:
        return False
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e["key"], e["operator"], e.get("values") or []
        if op == "In":
            ok = k in labels and labels[k] in vals
        elif op == "NotIn":
            ok = k not in labels or labels[k] not in vals
        elif op == "Exists":
            ok = k in labels
        elif op == "DoesNotExist":
            ok = k not in labels
        else:
            raise ValueError("unknown operator %r" % op)
        if not ok:
            return False
    return True


class Cluster:
    def __init__(self, objects):
        self.ns_labels = {}
        self.pods = {}      # "ns/name" -> pod object
        self.policies = []
        for o in objects:
            kind = o.get("kind")
            md = o.get("metadata") or {}
            if kind == "Namespace":
                labels = dict(md.get("labels") or {})
                labels[NS_NAME_LABEL] = md["name"]  # as the API server does
                self.ns_labels[md["name"]] = labels
            elif kind == "Pod":
                self.pods["%s/%s" % (md["namespace"], md["name"])] = o
            elif kind == "NetworkPolicy":
                self.policies.append(o)

    def pod_ns(self, pod):
        return self.pods[pod]["metadata"]["namespace"]

    def pod_labels(self, pod):
        return self.pods[pod]["metadata"].get("labels") or {}

    def pod_ip(self, pod):
        return ipaddress.ip_address(self.pods[pod]["status"]["podIP"])

    def named_port(self, pod, name, proto):
        for c in self.pods[pod]["spec"].get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == name and p.get("protocol", "TCP") == proto:
                    return p["containerPort"]
        return None

    @staticmethod
    def policy_types(pol):
        spec = pol["spec"]
        if spec.get("policyTypes"):
            return set(spec["policyTypes"])
        types = {"Ingress"}
        if spec.get("egress"):
            types.add("Egress")
        return types

    def selecting(self, pod, direction):
        ns = self.pod_ns(pod)
        return [p for p in self.policies
                if p["metadata"]["namespace"] == ns
                and direction in self.policy_types(p)
                and selector_matches(p["spec"].get("podSelector") or {}, self.pod_labels(pod))]

    def peer_matches(self, peer, pol_ns, other):
        if "ipBlock" in peer:
            ip = self.pod_ip(other)
            blk = peer["ipBlock"]
            net = ipaddress.ip_network(blk["cidr"], strict=False)
            if ip.version != net.version or ip not in net:
                return False
            for ex in blk.get("except") or []:
                exn = ipaddress.ip_network(ex, strict=False)
                if ip.version == exn.version and ip in exn:
                    return False
            return True
        ps, nss = peer.get("podSelector"), peer.get("namespaceSelector")
        other_ns = self.pod_ns(other)
        if nss is None:
            ns_ok = other_ns == pol_ns
        else:
            ns_ok = selector_matches(nss, self.ns_labels[other_ns])
        pod_ok = True if ps is None else selector_matches(ps, self.pod_labels(other))
        return ns_ok and pod_ok

    def port_matches(self, ports, dst, port, proto):
        if not ports:
            return True
        for p in ports:
            if p.get("protocol", "TCP") != proto:
                continue
            want = p.get("port")
            if want is None:
                return True
            if isinstance(want, str):
                if self.named_port(dst, want, proto) == port:
                    return True
                continue
            end = p.get("endPort", want)
            if want <= port <= end:
                return True
        return False

    def direction_allows(self, pod, other, direction, dst, port, proto):
        pols = self.selecting(pod, direction)
        if not pols:
            return True
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for pol in pols:
            for rule in pol["spec"].get(key) or []:
                peers = rule.get(peers_key) or []
                if peers and not any(self.peer_matches(pe, pol["metadata"]["namespace"], other)
                                     for pe in peers):
                    continue
                if self.port_matches(rule.get("ports"), dst, port, proto):
                    return True
        return False

    def allowed(self, src, dst, port, proto):
        if src == dst:
            return True
        return (self.direction_allows(src, dst, "Egress", dst, port, proto) and
                self.direction_allows(dst, src, "Ingress", dst, port, proto))
