#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Just enough of a Kubernetes API server for `kubectl apply --dry-run=client`
on manifests/: legacy discovery of the groups the manifests use (so kubectl
can map kinds to resources) and 404 for every object (so apply plans a
create). Nothing is stored, nothing is validated here: tests/manifests/
check_manifests.py does the schema check, and the test API server of
tests/apiserver/ serves real objects.

    python3 discovery_stub.py PORTFILE    # writes the bound port, serves until killed
"""
import http.server
import json
import re
import sys

RES = {
    # group/version: [(resource, kind, namespaced)]
    "v1": [("namespaces", "Namespace", False), ("serviceaccounts", "ServiceAccount", True),
           ("pods", "Pod", True)],
    "apps/v1": [("daemonsets", "DaemonSet", True)],
    "rbac.authorization.k8s.io/v1": [("clusterroles", "ClusterRole", False),
                                     ("clusterrolebindings", "ClusterRoleBinding", False)],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy", True)],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def resource_list(gv):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": [{"name": r, "singularName": k.lower(), "namespaced": ns, "kind": k,
                           "verbs": VERBS} for r, k, ns in RES[gv]]}


def group_list():
    groups = []
    for gv in RES:
        if "/" not in gv:
            continue
        g, v = gv.split("/")
        ver = {"groupVersion": gv, "version": v}
        groups.append({"name": g, "versions": [ver], "preferredVersion": ver})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": []})
        if path == "/apis":
            return self.reply(200, group_list())
        if path == "/version":
            return self.reply(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-stub"})
        m = re.fullmatch(r"/api/(v1)|/apis/([^/]+/[^/]+)", path)
        if m and (m.group(1) or m.group(2)) in RES:
            return self.reply(200, resource_list(m.group(1) or m.group(2)))
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "NotFound", "code": 404, "message": "not found: " + path})


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    main()
