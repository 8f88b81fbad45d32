#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The test API server behaves like the real one where clients depend on it,
and the real kubectl (/usr/bin/kubectl) can get, watch, create, replace and
delete against it."""

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server  # noqa: E402

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def ns(name, **labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(namespace, name, node, ip, **labels):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running", "podIP": ip}}


def netpol(namespace, name, app):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress"]}}


class ApiServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vakt-apiserver-test-")
        cls.srv = server.ApiServer(cls.tmp, bookmark_interval=0.2).start()
        cls.ctx = ssl.create_default_context(cafile=cls.srv.ca)
        cls.srv.load([ns("a", team="x"), ns("b")] +
                     [pod("a", f"p{i}", "n1" if i % 2 else "n2", f"10.0.0.{i}", app="web")
                      for i in range(10)] + [netpol("a", "deny", "web")])

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.srv.fault({"clear": True})

    def req(self, path, method="GET", body=None, token=None):
        r = urllib.request.Request(self.srv.url() + path, method=method,
                                   data=json.dumps(body).encode() if body is not None else None)
        r.add_header("Authorization", "Bearer " + (token or self.srv.token))
        r.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(r, context=self.ctx, timeout=10) as resp:
                return resp.status, json.loads(resp.read()), resp.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null"), e.headers

    def watch(self, path, n, timeout=5):
        """The first n events of a watch."""
        r = urllib.request.Request(self.srv.url() + path)
        r.add_header("Authorization", "Bearer " + self.srv.token)
        events = []
        with urllib.request.urlopen(r, context=self.ctx, timeout=timeout) as resp:
            while len(events) < n:
                line = resp.readline()
                if not line:
                    break
                events.append(json.loads(line))
        return events

    def test_list_pages_share_one_snapshot(self):
        code, first, _ = self.req("/api/v1/pods?limit=4")
        self.assertEqual(code, 200)
        self.assertEqual(len(first["items"]), 4)
        self.assertNotIn("kind", first["items"][0])  # as the real API's list items
        self.srv.create("pods", pod("b", "late", "n1", "10.9.9.9"))
        names, cont = [i["metadata"]["name"] for i in first["items"]], first["metadata"]["continue"]
        while cont:
            code, page, _ = self.req(f"/api/v1/pods?limit=4&continue={cont}")
            self.assertEqual(code, 200)
            self.assertEqual(page["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"])
            names += [i["metadata"]["name"] for i in page["items"]]
            cont = page["metadata"].get("continue")
        self.assertNotIn("late", names)
        self.assertEqual(len(names), len(set(names)))
        self.srv.delete("pods", "late", "b")

    def test_continue_token_expires_with_compaction(self):
        _, first, _ = self.req("/api/v1/pods?limit=3")
        self.srv.compact()
        code, status, _ = self.req(f"/api/v1/pods?limit=3&continue={first['metadata']['continue']}")
        self.assertEqual(code, 410)
        self.assertEqual(status["reason"], "Expired")

    def test_field_and_label_selectors_filter(self):
        _, lst, _ = self.req("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")
        self.assertEqual({i["spec"]["nodeName"] for i in lst["items"]}, {"n1"})
        self.assertEqual(len(lst["items"]), 5)
        _, lst, _ = self.req("/api/v1/namespaces?labelSelector=team%20in%20(x,y)")
        self.assertEqual([i["metadata"]["name"] for i in lst["items"]], ["a"])
        code, _, _ = self.req("/api/v1/pods?fieldSelector=spec.bogus%3D1")
        self.assertEqual(code, 400)

    def test_watch_from_a_version_replays_later_events_and_bookmarks(self):
        _, lst, _ = self.req("/apis/networking.k8s.io/v1/networkpolicies")
        rv = lst["metadata"]["resourceVersion"]
        self.srv.create("networkpolicies", netpol("b", "np1", "db"))
        self.srv.delete("networkpolicies", "np1", "b")
        evs = self.watch(f"/apis/networking.k8s.io/v1/networkpolicies?watch=1&resourceVersion={rv}"
                         "&allowWatchBookmarks=true", 3)
        self.assertEqual([e["type"] for e in evs], ["ADDED", "DELETED", "BOOKMARK"])
        self.assertEqual(evs[0]["object"]["kind"], "NetworkPolicy")
        self.assertGreater(int(evs[1]["object"]["metadata"]["resourceVersion"]),
                           int(evs[0]["object"]["metadata"]["resourceVersion"]))
        self.assertGreaterEqual(int(evs[2]["object"]["metadata"]["resourceVersion"]),
                                int(evs[1]["object"]["metadata"]["resourceVersion"]))

    def test_too_old_resource_version_is_gone(self):
        _, lst, _ = self.req("/api/v1/namespaces")
        self.srv.compact()
        evs = self.watch(f"/api/v1/namespaces?watch=1&resourceVersion={lst['metadata']['resourceVersion']}", 2)
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]["type"], "ERROR")
        self.assertEqual(evs[0]["object"]["code"], 410)
        self.srv.fault({"watch_gone": "http"})
        code, status, _ = self.req(f"/api/v1/namespaces?watch=1&resourceVersion=1")
        self.assertEqual((code, status["reason"]), (410, "Expired"))
        self.srv.fault({"watch_gone": "event"})

    def test_tokens_rotate_and_unknown_ones_are_refused(self):
        old = self.srv.token
        self.assertEqual(self.req("/api/v1/namespaces", token="nope")[0], 401)
        self.srv.rotate_token(keep_previous=True)
        self.assertEqual(self.req("/api/v1/namespaces", token=old)[0], 200)
        with open(self.srv.token_file) as f:
            self.assertEqual(f.read().strip(), self.srv.token)
        self.srv.rotate_token(keep_previous=False)
        self.assertEqual(self.req("/api/v1/namespaces", token=old)[0], 401)

    def test_injected_429_carries_retry_after(self):
        self.srv.fault({"status": 429, "count": 1, "retry_after": 3, "match": "/pods"})
        code, status, headers = self.req("/api/v1/pods")
        self.assertEqual((code, headers["Retry-After"], status["reason"]), (429, "3", "TooManyRequests"))
        self.assertEqual(self.req("/api/v1/pods")[0], 200)

    def test_cut_and_malformed_events(self):
        _, lst, _ = self.req("/api/v1/namespaces")
        rv = lst["metadata"]["resourceVersion"]
        self.srv.create("namespaces", ns("cut1"))
        self.srv.fault({"malformed_events": 1})
        r = urllib.request.Request(self.srv.url() + f"/api/v1/namespaces?watch=1&resourceVersion={rv}")
        r.add_header("Authorization", "Bearer " + self.srv.token)
        with urllib.request.urlopen(r, context=self.ctx, timeout=5) as resp:
            with self.assertRaises(ValueError):
                json.loads(resp.readline())
        self.srv.fault({"cut_events": 1})
        with urllib.request.urlopen(r, context=self.ctx, timeout=5) as resp:
            with self.assertRaises(Exception):  # IncompleteRead: the chunk never ends
                json.loads(resp.read())
        self.srv.delete("namespaces", "cut1")

    def test_conflicting_replace_and_duplicate_create_are_refused(self):
        obj = self.srv.get("namespaces", "b")
        self.srv.replace("namespaces", dict(obj, metadata=dict(obj["metadata"], labels={"v": "1"})))
        code, status, _ = self.req("/api/v1/namespaces/b", "PUT", obj)  # stale resourceVersion
        self.assertEqual((code, status["reason"]), (409, "Conflict"))
        code, status, _ = self.req("/api/v1/namespaces", "POST", ns("b"))
        self.assertEqual((code, status["reason"]), (409, "AlreadyExists"))
        code, _, _ = self.req("/api/v1/namespaces/nope/pods", "POST", pod("nope", "x", "n", "1.1.1.1"))
        self.assertEqual(code, 404)

    # --- kubectl ---------------------------------------------------------------

    def kubectl(self, *args, stdin=None, check=True):
        p = subprocess.run([KUBECTL, "--kubeconfig", self.srv.kubeconfig, *args], input=stdin,
                           capture_output=True, text=True, timeout=30)
        if check and p.returncode:
            self.fail(f"kubectl {' '.join(args)}: rc={p.returncode} {p.stderr}")
        return p.stdout if check else p

    def test_kubectl_gets_creates_replaces_and_deletes(self):
        out = self.kubectl("get", "pods", "-n", "a")
        self.assertIn("NAME", out.splitlines()[0])
        self.assertIn("p3", out)
        self.assertEqual(len(self.kubectl("get", "pods", "-A", "-l", "app=web", "-o",
                                          "name").split()), 10)
        self.assertEqual(self.kubectl("get", "netpol", "-n", "a", "deny", "-o",
                                      "jsonpath={.spec.podSelector.matchLabels.app}"), "web")
        self.kubectl("create", "namespace", "kc")  # kubectl sends protobuf here
        self.kubectl("create", "-f", "-", stdin=json.dumps(netpol("kc", "np", "api")))
        self.assertEqual(self.srv.get("networkpolicies", "np", "kc")["spec"]["podSelector"],
                         {"matchLabels": {"app": "api"}})
        self.kubectl("replace", "-f", "-", stdin=json.dumps(netpol("kc", "np", "db")))
        self.assertEqual(self.srv.get("networkpolicies", "np", "kc")["spec"]["podSelector"],
                         {"matchLabels": {"app": "db"}})
        self.kubectl("label", "namespace", "kc", "env=test")
        self.assertEqual(self.srv.get("namespaces", "kc")["metadata"]["labels"]["env"], "test")
        self.kubectl("delete", "networkpolicy", "np", "-n", "kc")
        p = self.kubectl("get", "netpol", "np", "-n", "kc", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("NotFound", p.stderr)
        self.kubectl("delete", "namespace", "kc")
        self.assertNotIn("kc", self.kubectl("get", "ns", "-o", "name"))

    def test_kubectl_client_certificate_kubeconfig(self):
        p = subprocess.run([KUBECTL, "--kubeconfig", self.srv.kubeconfig_cert, "get", "ns", "-o",
                            "name"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("namespace/a", p.stdout)

    def test_kubectl_watch_follows_changes(self):
        w = subprocess.Popen([KUBECTL, "--kubeconfig", self.srv.kubeconfig, "get", "netpol", "-n",
                              "b", "-w", "-o", "name", "--request-timeout=0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.0)  # discovery and the initial list
            self.kubectl("create", "-f", "-", stdin=json.dumps(netpol("b", "watched", "x")))
            self.kubectl("delete", "netpol", "watched", "-n", "b")
            deadline, lines = time.time() + 10, []
            os.set_blocking(w.stdout.fileno(), False)
            while time.time() < deadline and len(lines) < 2:
                chunk = w.stdout.readline()
                if chunk:
                    lines.append(chunk.strip())
                else:
                    time.sleep(0.05)
            self.assertEqual(lines[:2], ["networkpolicy.networking.k8s.io/watched"] * 2,
                             w.stderr.read() if w.poll() is not None else "")
        finally:
            w.kill()
            w.communicate()

    def test_kubectl_watch_default_table_output(self):
        p = subprocess.run(["timeout", "3", KUBECTL, "--kubeconfig", self.srv.kubeconfig, "get",
                            "pods", "-n", "a", "-w"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 124, p.stderr)  # killed by timeout: it was watching
        self.assertIn("STATUS", p.stdout)
        self.assertIn("p1", p.stdout)


if __name__ == "__main__":
    if not os.path.exists(KUBECTL):
        sys.exit("kubectl not found: these tests need the real kubectl")
    unittest.main(verbosity=2)
