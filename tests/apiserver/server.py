#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small Kubernetes API server for tests: Namespaces, Pods and
NetworkPolicies over HTTPS, with the list/watch semantics clients rely on and
fault injection.

    python3 tests/apiserver/server.py --port 0 --dir TMP

prints one JSON line (url, ca, token, token_file, kubeconfig, ...) and serves
until killed. As a module: ApiServer(dir).start() and the methods below.

What it implements (HTTP/1.1 only, chunked watch streams):
  - a cluster-wide resourceVersion counter; every write is an event in a
    history that can be compacted (watch from an older resourceVersion, or a
    continue token of an older list, then gets 410 Expired);
  - list with limit/continue served from a snapshot, labelSelector
    (=, ==, !=, in, notin, exists, !exists) and fieldSelector
    (metadata.name, metadata.namespace, spec.nodeName for pods);
  - watch=1 from a resourceVersion (or from "now" with synthetic ADDED
    events when none or "0" is given), allowWatchBookmarks with periodic
    BOOKMARK events, timeoutSeconds;
  - create (POST), get, replace (PUT, with resourceVersion conflicts),
    delete (a namespace takes its pods and policies along);
  - discovery, /version and meta.k8s.io Tables, enough for kubectl;
  - bearer tokens from a token file that can be rotated (the previous token
    optionally stays valid) and TLS client certificates;
  - faults through POST /_admin/fault (JSON) or the methods of ApiServer:
      {"status": 500|429|403|..., "count": N, "retry_after": S, "match": "pods"}
      {"cut_events": N}        the next N watch events are cut mid-event
      {"malformed_events": N}  the next N watch events are sent as garbage
      {"fragment": B}          watch events are written in B-byte chunks (0: off)
      {"refuse_seconds": S}    close the listener and every connection for S s
      {"rotate_token": true, "keep_previous": false}
      {"compact": true}        history dropped, every watch closed
      {"close_watches": true}  end every watch stream cleanly
      {"expire_continue": N}   the next N continue requests get 410 Expired
      {"bookmark_interval": S} {"watch_gone": "event"|"http"} {"clear": true}
    GET /_admin/objects returns every object, POST /_admin/objects loads a
    {"items": [...]} in bulk, GET /_admin/stats counts requests.
"""

import argparse
import base64
import bisect
import copy
import datetime
import http.server
import json
import os
import re
import secrets
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

RESOURCES = {
    # resource: (group, version, kind, namespaced, short names)
    "namespaces": ("", "v1", "Namespace", False, ["ns"]),
    "pods": ("", "v1", "Pod", True, ["po"]),
    "networkpolicies": ("networking.k8s.io", "v1", "NetworkPolicy", True, ["netpol"]),
}
KIND_TO_RESOURCE = {v[2]: k for k, v in RESOURCES.items()}


def api_version(resource):
    group, version = RESOURCES[resource][0], RESOURCES[resource][1]
    return f"{group}/{version}" if group else version


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class HttpError(Exception):
    def __init__(self, code, reason, message, retry_after=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.retry_after = code, reason, message, retry_after


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {},
         "status": "Failure" if code >= 300 else "Success",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


# --- selectors ---------------------------------------------------------------

def _split_top(s):
    """Split a label selector on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(s):
    reqs = []
    for p in _split_top(s or ""):
        m = re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", p)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"([^\s!=]+)\s*(==|=|!=)\s*(\S*)", p)
        if m:
            reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
            continue
        m = re.fullmatch(r"(!?)([^\s!=]+)", p)
        if m:
            reqs.append((m.group(2), "!exists" if m.group(1) else "exists", None))
            continue
        raise HttpError(400, "BadRequest", f"unable to parse requirement: {p!r}")
    return reqs


def label_match(reqs, labels):
    for key, op, val in reqs:
        has = key in labels
        if op == "=" and labels.get(key) != val:
            return False
        if op == "!=" and has and labels[key] == val:
            return False
        if op == "in" and (not has or labels[key] not in val):
            return False
        if op == "notin" and has and labels[key] in val:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


FIELDS = {
    "metadata.name": lambda o: o["metadata"].get("name", ""),
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
}
POD_FIELDS = {"spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", "") or ""}


def parse_field_selector(resource, s):
    reqs = []
    known = dict(FIELDS)
    if resource == "pods":
        known.update(POD_FIELDS)
    for p in _split_top(s or ""):
        m = re.fullmatch(r"([A-Za-z.]+)\s*(==|=|!=)\s*(\S*)", p)
        if not m or m.group(1) not in known:
            raise HttpError(400, "BadRequest",
                            f'"{p}" is not a known field selector: only '
                            f'"{", ".join(sorted(known))}"')
        reqs.append((known[m.group(1)], m.group(2) != "!=", m.group(3)))
    return reqs


def field_match(reqs, obj):
    return all((get(obj) == val) == eq for get, eq, val in reqs)


# --- the server ----------------------------------------------------------------

class Watch:
    """One open watch stream: closed by compaction, faults or shutdown."""

    def __init__(self):
        self.closed = False
        self.cut = False  # close without the terminating chunk


class ApiServer:
    def __init__(self, workdir, port=0, host="127.0.0.1", bookmark_interval=1.0):
        self.dir = os.path.abspath(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.host, self.port = host, port
        self.cond = threading.Condition()
        self.rv = 1
        self.floor = 0  # events with rv <= floor are compacted away
        self.history = []  # (rv, resource, type, obj), rv ascending
        self.history_rvs = []  # the rvs of history, for bisect
        self.objects = {r: {} for r in RESOURCES}  # resource -> {(ns, name): obj}
        self.snapshots = {}  # list rv -> {resource: sorted [(key, obj)]}
        self.watches = set()
        self.conns = set()
        self.faults = []  # [{"status", "count", "retry_after", "match"}]
        self.cut_events = 0
        self.malformed_events = 0
        self.fragment = 0
        self.expire_continue = 0
        self.watch_gone = "event"
        self.bookmark_interval = bookmark_interval
        self.refuse_until = 0.0
        self.stats = {"requests": 0, "watches": 0, "lists": 0, "continues": 0,
                      "unauthorized": 0, "faults_served": 0, "by_path": {}}
        self.lsock = None
        self.stopping = False
        self._gen_pki()
        self.token_file = os.path.join(self.dir, "token")
        self.tokens = [secrets.token_hex(16)]
        self._write_token()

    # --- PKI and credentials --------------------------------------------------

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def _gen_pki(self):
        d = self.dir
        self.ca, self.ca_key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
        self.cert, self.key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
        self.client_cert = os.path.join(d, "client.crt")
        self.client_key = os.path.join(d, "client.key")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
                      "-subj", "/CN=vakt-test-ca")
        ext = os.path.join(d, "server.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
                    "extendedKeyUsage=serverAuth\n")
        cext = os.path.join(d, "client.ext")
        with open(cext, "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        for crt, key, cn, e in ((self.cert, self.key, "localhost", ext),
                                (self.client_cert, self.client_key, "vakt-client", cext)):
            csr = crt + ".csr"
            self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
            self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                          "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", e)

    def _write_token(self):
        tmp = self.token_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.tokens[0] + "\n")
        os.replace(tmp, self.token_file)  # atomic, as kubelet's projected volumes are

    @property
    def token(self):
        return self.tokens[0]

    def rotate_token(self, keep_previous=False):
        with self.cond:
            new = secrets.token_hex(16)
            self.tokens = [new] + (self.tokens[:1] if keep_previous else [])
            self._write_token()
            return new

    def url(self):
        return f"https://{self.host}:{self.port}"

    def write_kubeconfigs(self):
        def b64(path):
            with open(path, "rb") as f:
                return base64.b64encode(f.read()).decode()
        cluster = {"name": "vakt-test", "cluster": {"server": self.url(),
                                                    "certificate-authority": self.ca}}
        ctx = lambda user: [{"name": "vakt-test", "context": {"cluster": "vakt-test",
                                                               "user": user}}]
        token_cfg = {"apiVersion": "v1", "kind": "Config", "clusters": [cluster],
                     "users": [{"name": "tok", "user": {"tokenFile": self.token_file}}],
                     "contexts": ctx("tok"), "current-context": "vakt-test"}
        cert_cluster = {"name": "vakt-test", "cluster": {
            "server": self.url(), "certificate-authority-data": b64(self.ca)}}
        cert_cfg = {"apiVersion": "v1", "kind": "Config", "clusters": [cert_cluster],
                    "users": [{"name": "cert", "user": {
                        "client-certificate-data": b64(self.client_cert),
                        "client-key-data": b64(self.client_key)}}],
                    "contexts": ctx("cert"), "current-context": "vakt-test"}
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.kubeconfig_cert = os.path.join(self.dir, "kubeconfig-cert")
        # JSON is YAML: both kubectl and the agent read these.
        for path, cfg in ((self.kubeconfig, token_cfg), (self.kubeconfig_cert, cert_cfg)):
            with open(path, "w") as f:
                json.dump(cfg, f, indent=1)

    def info(self):
        return {"url": self.url(), "port": self.port, "ca": self.ca, "token": self.token,
                "token_file": self.token_file, "kubeconfig": self.kubeconfig,
                "kubeconfig_cert": self.kubeconfig_cert, "client_cert": self.client_cert,
                "client_key": self.client_key, "dir": self.dir, "pid": os.getpid()}

    # --- lifecycle ------------------------------------------------------------

    def _ssl_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.load_verify_locations(self.ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        return s

    def start(self):
        self.sslctx = self._ssl_context()
        self.lsock = self._listen()
        self.write_kubeconfigs()
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.lsock:
            self.lsock.close()
        self._drop_connections()

    def _accept_loop(self):
        while not self.stopping:
            if self.refuse_until:
                time.sleep(max(0.0, self.refuse_until - time.time()))
                with self.cond:
                    self.refuse_until = 0.0
                    self.lsock = self._listen()
                continue
            lsock = self.lsock
            try:
                r, _, _ = select.select([lsock], [], [], 0.1)
                if not r:
                    continue
                conn, addr = lsock.accept()
            except (OSError, ValueError, TypeError):
                continue  # the listener was closed by refuse()
            threading.Thread(target=self._serve_conn, args=(conn, addr), daemon=True).start()

    def _serve_conn(self, conn, addr):
        conn.settimeout(30)
        # As Go's net/http (the real API server): without it, a response's body
        # or a watch event behind a not yet acknowledged segment waits for the
        # peer's delayed ACK (Nagle), some 40 ms.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tconn = self.sslctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        with self.cond:
            self.conns.add(tconn)
        try:
            Handler(tconn, addr, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self.cond:
                self.conns.discard(tconn)
            try:
                tconn.close()
            except OSError:
                pass

    def _drop_connections(self, keep=None):
        with self.cond:
            conns = [c for c in self.conns if c is not keep]
            for w in self.watches:
                w.closed = w.cut = True
            self.cond.notify_all()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def refuse(self, seconds, keep=None):
        """Connections are refused (the port is closed) for seconds; every
        open connection but keep (the admin request's own) is dropped."""
        with self.cond:
            self.refuse_until = time.time() + seconds
            lsock, self.lsock = self.lsock, None
        if lsock:
            lsock.close()
        self._drop_connections(keep)

    # --- state ----------------------------------------------------------------

    def _record(self, resource, etype, obj):
        self.history.append((self.rv, resource, etype, obj))
        self.history_rvs.append(self.rv)
        self.cond.notify_all()

    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _put(self, resource, obj, etype):
        obj["metadata"]["resourceVersion"] = self._next_rv()
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self.objects[resource][key] = obj
        self._record(resource, etype, obj)
        return obj

    def _delete(self, resource, key):
        old = self.objects[resource].pop(key)
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        self._record(resource, "DELETED", gone)
        return gone

    def _normalise(self, resource, obj, ns):
        group, version, kind, namespaced, _ = RESOURCES[resource]
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            raise HttpError(400, "BadRequest", "object has no metadata")
        if obj.get("kind", kind) != kind:
            raise HttpError(400, "BadRequest", f"kind {obj.get('kind')} is not {kind}")
        obj = copy.deepcopy(obj)
        obj["kind"], obj["apiVersion"] = kind, api_version(resource)
        md = obj["metadata"]
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + secrets.token_hex(3)
        if not isinstance(md.get("name"), str) or not md["name"]:
            raise HttpError(400, "BadRequest", "metadata.name: Required value")
        if namespaced:
            if md.get("namespace", ns) != ns:
                raise HttpError(400, "BadRequest",
                                "the namespace of the provided object does not match the "
                                "namespace sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        return obj

    def create(self, resource, obj, ns=None):
        with self.cond:
            return copy.deepcopy(self._create(resource, obj, ns))

    def _create(self, resource, obj, ns):
        namespaced = RESOURCES[resource][3]
        ns = ns or (obj.get("metadata") or {}).get("namespace") or ("default" if namespaced
                                                                    else "")
        obj = self._normalise(resource, obj, ns if namespaced else "")
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        if key in self.objects[resource]:
            raise HttpError(409, "AlreadyExists",
                            f'{resource} "{md["name"]}" already exists')
        if namespaced and ("", ns) not in self.objects["namespaces"]:
            raise HttpError(404, "NotFound", f'namespaces "{ns}" not found')
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        md.pop("resourceVersion", None)
        if resource == "namespaces":
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        return self._put(resource, obj, "ADDED")

    def replace(self, resource, obj, ns=None):
        with self.cond:
            return copy.deepcopy(self._replace(resource, obj, ns))

    def _replace(self, resource, obj, ns, name=None):
        namespaced = RESOURCES[resource][3]
        ns = ns or (obj.get("metadata") or {}).get("namespace") or ("default" if namespaced
                                                                    else "")
        obj = self._normalise(resource, obj, ns if namespaced else "")
        md = obj["metadata"]
        if name is not None and md["name"] != name:
            raise HttpError(400, "BadRequest", "the name of the object does not match the URL")
        key = (md.get("namespace", ""), md["name"])
        old = self.objects[resource].get(key)
        if old is None:
            raise HttpError(404, "NotFound", f'{resource} "{md["name"]}" not found')
        rv = md.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise HttpError(409, "Conflict",
                            f'Operation cannot be fulfilled on {resource} "{md["name"]}": '
                            "the object has been modified; please apply your changes to the "
                            "latest version and try again")
        md["uid"] = old["metadata"].get("uid")
        md["creationTimestamp"] = old["metadata"].get("creationTimestamp")
        if resource == "namespaces":
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
            obj["status"] = old.get("status")
        return self._put(resource, obj, "MODIFIED")

    def delete(self, resource, name, ns=None):
        with self.cond:
            return copy.deepcopy(self._delete_named(resource, name, ns))

    def _delete_named(self, resource, name, ns):
        namespaced = RESOURCES[resource][3]
        key = ((ns or "default") if namespaced else "", name)
        if key not in self.objects[resource]:
            raise HttpError(404, "NotFound", f'{resource} "{name}" not found')
        if resource == "namespaces":
            # No Terminating phase: the contents go at once, before the namespace.
            for r in ("pods", "networkpolicies"):
                for k in [k for k in self.objects[r] if k[0] == name]:
                    self._delete(r, k)
        return self._delete(resource, key)

    def get(self, resource, name, ns=None):
        with self.cond:
            key = ((ns or "default") if RESOURCES[resource][3] else "", name)
            obj = self.objects[resource].get(key)
            if obj is None:
                raise HttpError(404, "NotFound", f'{resource} "{name}" not found')
            return copy.deepcopy(obj)

    def all_objects(self):
        """Every object, kind and apiVersion set, in a stable order."""
        with self.cond:
            out = []
            for r in ("namespaces", "pods", "networkpolicies"):
                out += [copy.deepcopy(self.objects[r][k]) for k in sorted(self.objects[r])]
            return {"resourceVersion": str(self.rv), "items": out}

    def load(self, items):
        """Bulk create or replace (benchmarks, fixtures)."""
        with self.cond:
            for obj in items:
                resource = KIND_TO_RESOURCE.get(obj.get("kind"))
                if resource is None:
                    raise HttpError(400, "BadRequest", f"unknown kind {obj.get('kind')!r}")
                ns = (obj.get("metadata") or {}).get("namespace")
                try:
                    self._create(resource, obj, ns)
                except HttpError as e:
                    if e.code != 409:
                        raise
                    self._replace(resource, obj, ns)
            return str(self.rv)

    def compact(self):
        """Forget the history: older resourceVersions and continue tokens expire.

        The counter moves on first, so that even a client which has seen
        every event is behind the floor once its watch is closed."""
        with self.cond:
            self.rv += 1
            self.floor = self.rv
            self.history, self.history_rvs = [], []
            self.snapshots = {}
            for w in self.watches:
                w.closed = True
            self.cond.notify_all()

    def close_watches(self):
        with self.cond:
            for w in self.watches:
                w.closed = True
            self.cond.notify_all()

    def fault(self, f, keep=None):
        with self.cond:
            if f.get("clear"):
                self.faults, self.cut_events, self.malformed_events = [], 0, 0
                self.fragment, self.expire_continue = 0, 0
            if "status" in f:
                self.faults.append({"status": int(f["status"]), "count": int(f.get("count", 1)),
                                    "retry_after": f.get("retry_after"),
                                    "match": f.get("match", "")})
            self.cut_events += int(f.get("cut_events", 0))
            self.malformed_events += int(f.get("malformed_events", 0))
            self.expire_continue += int(f.get("expire_continue", 0))
            if "fragment" in f:
                self.fragment = int(f["fragment"])
            if "bookmark_interval" in f:
                self.bookmark_interval = float(f["bookmark_interval"])
            if "watch_gone" in f:
                self.watch_gone = f["watch_gone"]
            self.cond.notify_all()
        if f.get("rotate_token"):
            self.rotate_token(bool(f.get("keep_previous")))
        if f.get("compact"):
            self.compact()
        if f.get("close_watches"):
            self.close_watches()
        if f.get("refuse_seconds"):
            self.refuse(float(f["refuse_seconds"]), keep)
        return {"token": self.token, "resourceVersion": str(self.rv)}

    def take_fault(self, path):
        """The injected status for this request, if any (under the lock)."""
        for f in self.faults:
            if f["count"] > 0 and f["match"] in path:
                f["count"] -= 1
                self.stats["faults_served"] += 1
                return f
        return None

    # --- list -------------------------------------------------------------------

    def _filtered(self, resource, ns, lsel, fsel):
        items = []
        for key in sorted(self.objects[resource]):
            if ns is not None and key[0] != ns:
                continue
            obj = self.objects[resource][key]
            if label_match(lsel, obj["metadata"].get("labels") or {}) and field_match(fsel, obj):
                items.append((key, obj))
        return items

    def list(self, resource, ns, q):
        lsel = parse_label_selector(q.get("labelSelector"))
        fsel = parse_field_selector(resource, q.get("fieldSelector"))
        limit = int(q.get("limit") or 0)
        cont = q.get("continue")
        with self.cond:
            self.stats["lists"] += 1
            if cont:
                self.stats["continues"] += 1
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
                    list_rv, start = int(tok["rv"]), tok["start"]
                except (ValueError, KeyError, TypeError):
                    raise HttpError(400, "BadRequest", "invalid continue token")
                snap = self.snapshots.get((list_rv, resource, ns, q.get("labelSelector"),
                                           q.get("fieldSelector")))
                if self.expire_continue > 0 or snap is None or list_rv < self.floor:
                    self.expire_continue = max(0, self.expire_continue - 1)
                    raise HttpError(410, "Expired",
                                    "The provided continue parameter is too old to display a "
                                    "consistent list result. You can start a new list without "
                                    "the continue parameter.")
            else:
                list_rv, start = self.rv, 0
                snap = self._filtered(resource, ns, lsel, fsel)
                if limit and len(snap) > limit:
                    self.snapshots[(list_rv, resource, ns, q.get("labelSelector"),
                                    q.get("fieldSelector"))] = snap
            page = snap[start:start + limit] if limit else snap[start:]
            # List items carry no kind/apiVersion, as the real API's. A shallow
            # copy is enough (and a deep one was most of a page's cost at 150,000
            # pods): stored objects are replaced on write, never changed in place.
            items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                     for _, o in page]
        md = {"resourceVersion": str(list_rv)}
        end = start + len(page)
        if end < len(snap):
            md["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": list_rv, "start": end}).encode()).decode()
            md["remainingItemCount"] = len(snap) - end
        kind = RESOURCES[resource][2]
        return {"kind": kind + "List", "apiVersion": api_version(resource), "metadata": md,
                "items": items}


# --- tables (kubectl's default output) ----------------------------------------

def age(obj):
    ts = obj["metadata"].get("creationTimestamp")
    if not ts:
        return "<unknown>"
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    s = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


def table_columns(resource):
    cols = [("Name", "string", "name")]
    if resource == "namespaces":
        cols += [("Status", "string", "phase")]
    elif resource == "pods":
        cols += [("Status", "string", "phase"), ("IP", "string", "pod IP"),
                 ("Node", "string", "node name")]
    else:
        cols += [("Pod-Selector", "string", "selector")]
    cols += [("Age", "string", "age")]
    return [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": d,
             "priority": 0} for n, t, d in cols]


def table_row(resource, obj):
    md, spec, st = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    cells = [md["name"]]
    if resource == "namespaces":
        cells.append(st.get("phase", "Active"))
    elif resource == "pods":
        cells += [st.get("phase", "Pending"), st.get("podIP", "<none>"),
                  spec.get("nodeName", "<none>")]
    else:
        ml = (spec.get("podSelector") or {}).get("matchLabels") or {}
        cells.append(",".join(f"{k}={v}" for k, v in sorted(ml.items())) or "<none>")
    cells.append(age(obj))
    full = dict(obj)
    full.setdefault("kind", RESOURCES[resource][2])
    full.setdefault("apiVersion", api_version(resource))
    return {"cells": cells, "object": full}


def wants_table(accept):
    return "as=Table" in (accept or "")


def as_table(resource, objs, md=None):
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md or {},
            "columnDefinitions": table_columns(resource),
            "rows": [table_row(resource, o) for o in objs]}


def _pb_fields(buf):
    """Yield (field number, wire type, value) of a protobuf message."""
    i = 0

    def varint():
        nonlocal i
        shift = val = 0
        while True:
            b = buf[i]
            i += 1
            val |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return val
    while i < len(buf):
        key = varint()
        field, wt = key >> 3, key & 7
        if wt == 0:
            yield field, wt, varint()
        elif wt == 2:
            n = varint()
            yield field, wt, buf[i:i + n]
            i += n
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            raise ValueError(f"protobuf wire type {wt}")


def decode_protobuf_metadata_only(raw):
    """kubectl's typed commands (create namespace) send protobuf: decode the
    k8s envelope and ObjectMeta's name, generateName, namespace, labels and
    annotations; spec and status are not interpreted (None if not a Namespace)."""
    if not raw.startswith(b"k8s\x00"):
        raise ValueError("no k8s protobuf magic")
    tm, body = {}, b""
    for f, _, v in _pb_fields(raw[4:]):
        if f == 1:
            tm = {ff: vv.decode() for ff, _, vv in _pb_fields(v)}
        elif f == 2:
            body = v
    if tm.get(2) != "Namespace":
        return None
    md = {}
    for f, _, v in _pb_fields(body):
        if f != 1:
            continue
        for mf, _, mv in _pb_fields(v):
            if mf in (1, 2, 3):
                md[{1: "name", 2: "generateName", 3: "namespace"}[mf]] = mv.decode()
            elif mf in (11, 12):
                e = {ef: ev.decode() for ef, _, ev in _pb_fields(mv)}
                md.setdefault("labels" if mf == 11 else "annotations", {})[e.get(1, "")] = \
                    e.get(2, "")
    return {"apiVersion": tm.get(1, "v1"), "kind": "Namespace", "metadata": md}


def openapi_v3(gvpath):
    """A skeleton OpenAPI v3 document: paths with the PATCH operations'
    group-version-kind and fieldValidation parameter, no schemas."""
    paths = {}
    for r, (group, version, kind, namespaced, _) in RESOURCES.items():
        prefix = "api/v1" if not group else f"apis/{group}/{version}"
        if prefix != gvpath:
            continue
        base = f"/{prefix}/namespaces/{{namespace}}/{r}" if namespaced else f"/{prefix}/{r}"
        op = {"x-kubernetes-group-version-kind": {"group": group, "version": version,
                                                   "kind": kind},
              "parameters": [{"name": "fieldValidation", "in": "query",
                              "schema": {"type": "string", "uniqueItems": True}}],
              "responses": {"200": {"description": "OK"}}}
        paths[base + "/{name}"] = {"patch": op}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": {}}}


# --- HTTP -----------------------------------------------------------------------

PATH_RE = re.compile(
    r"^/(?:api/v1|apis/networking\.k8s\.io/v1)"
    r"(?:/namespaces/(?P<ns>[^/]+)(?=/(?:pods|networkpolicies)))?"
    r"/(?P<res>namespaces|pods|networkpolicies)(?:/(?P<name>[^/]+))?/?$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vakt-test-apiserver"

    def log_message(self, fmt, *args):
        if os.environ.get("VAKT_APISERVER_LOG"):
            sys.stderr.write("apiserver: " + (fmt % args) + "\n")

    @property
    def api(self):
        return self.server

    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_status(self, e):
        extra = {"Retry-After": str(e.retry_after)} if e.retry_after is not None else None
        self.send_json(e.code, status_obj(e.code, e.reason, e.message), extra)

    def read_body(self):
        raw = getattr(self, "_body", b"")
        if "protobuf" in (self.headers.get("Content-Type") or ""):
            try:
                obj = decode_protobuf_metadata_only(raw)
            except (ValueError, IndexError, UnicodeDecodeError) as e:
                raise HttpError(400, "BadRequest", f"bad protobuf body: {e}")
            if obj is None:
                raise HttpError(415, "UnsupportedMediaType",
                                "this test server decodes protobuf for Namespaces only: "
                                "send JSON (kubectl create -f)")
            return obj
        try:
            return json.loads(raw or b"null")
        except ValueError as e:
            raise HttpError(400, "BadRequest", f"body is not JSON: {e}")

    def authorised(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:].strip() in self.api.tokens:
            return True
        try:
            return bool(self.connection.getpeercert())
        except (AttributeError, ValueError):
            return False

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        if method in ("POST", "PUT", "DELETE", "PATCH"):
            # Read the body up front so that an error reply never leaves it
            # on a kept-alive connection to be parsed as the next request.
            n = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(n) if n else b""
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        api = self.api
        try:
            if url.path.startswith("/_admin/"):
                return self.admin(method, url.path)
            with api.cond:
                api.stats["requests"] += 1
                key = method + " " + url.path
                api.stats["by_path"][key] = api.stats["by_path"].get(key, 0) + 1
                if not self.authorised():
                    api.stats["unauthorized"] += 1
                    raise HttpError(401, "Unauthorized", "Unauthorized")
                f = api.take_fault(self.path)
            if f:
                code = f["status"]
                reason = {429: "TooManyRequests", 403: "Forbidden", 401: "Unauthorized",
                          500: "InternalError", 503: "ServiceUnavailable"}.get(code, "Unknown")
                raise HttpError(code, reason, f"injected fault: {code}", f.get("retry_after"))
            if method == "GET" and self.discovery(url.path):
                return
            m = PATH_RE.match(url.path)
            if not m or m.group("res") not in RESOURCES:
                raise HttpError(404, "NotFound", "the server could not find the requested "
                                "resource")
            self.resource(method, m.group("res"), m.group("ns"), m.group("name"), q)
        except HttpError as e:
            self.send_error_status(e)

    def discovery(self, path):
        api = self.api
        if path == "/version":
            self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-vakt-test",
                                 "gitCommit": "0", "gitTreeState": "clean",
                                 "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.23",
                                 "compiler": "gc", "platform": "linux/amd64"})
        elif path == "/api":
            self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                 "serverAddressByClientCIDRs": [
                                     {"clientCIDR": "0.0.0.0/0",
                                      "serverAddress": f"{api.host}:{api.port}"}]})
        elif path == "/apis":
            gv = {"groupVersion": "networking.k8s.io/v1", "version": "v1"}
            self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "networking.k8s.io", "versions": [gv], "preferredVersion": gv}]})
        elif path == "/openapi/v3":
            # Only what kubectl reads to choose server-side field validation.
            self.send_json(200, {"paths": {
                gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash=vakt1"}
                for gv in ("api/v1", "apis/networking.k8s.io/v1")}})
        elif path in ("/openapi/v3/api/v1", "/openapi/v3/apis/networking.k8s.io/v1"):
            self.send_json(200, openapi_v3(path[len("/openapi/v3/"):]))
        elif path in ("/api/v1", "/apis/networking.k8s.io/v1"):
            gv = "v1" if path == "/api/v1" else "networking.k8s.io/v1"
            res = []
            for r, (group, version, kind, namespaced, short) in RESOURCES.items():
                if api_version(r) != gv:
                    continue
                res.append({"name": r, "singularName": kind.lower(), "namespaced": namespaced,
                            "kind": kind, "shortNames": short,
                            "verbs": ["create", "delete", "get", "list", "update", "watch"]})
            self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                 "groupVersion": gv, "resources": res})
        else:
            return False
        return True

    def resource(self, method, res, ns, name, q):
        api = self.api
        namespaced = RESOURCES[res][3]
        if ns and not namespaced:
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        if name is None:
            if method == "GET":
                if q.get("watch") in ("1", "true"):
                    return self.watch(res, ns, q)
                lst = api.list(res, ns, q)
                if wants_table(self.headers.get("Accept")):
                    lst = as_table(res, lst["items"], lst["metadata"])
                return self.send_json(200, lst)
            if method == "POST":
                body = self.read_body()
                if not namespaced:
                    ns = None
                return self.send_json(201, api.create(res, body, ns))
            raise HttpError(405, "MethodNotAllowed", f"{method} is not supported here")
        if method == "GET":
            obj = api.get(res, name, ns)
            if wants_table(self.headers.get("Accept")):
                obj = as_table(res, [obj])
            return self.send_json(200, obj)
        if method == "PUT":
            body = self.read_body()
            with api.cond:
                obj = copy.deepcopy(api._replace(res, body, ns, name))
            return self.send_json(200, obj)
        if method == "PATCH":
            ctype = self.headers.get("Content-Type") or ""
            if "merge-patch" not in ctype:
                # Strategic merge differs from a merge patch only for lists with
                # merge keys; json-patch is not supported.
                raise HttpError(415, "UnsupportedMediaType",
                                f"this test server supports merge patches only, not {ctype}")
            patch = self.read_body()
            with api.cond:
                key = (ns or "default" if namespaced else "", name)
                cur = api.objects[res].get(key)
                if cur is None:
                    raise HttpError(404, "NotFound", f'{res} "{name}" not found')
                new = merge_patch(cur, patch)
                new["metadata"].pop("resourceVersion", None)
                obj = copy.deepcopy(api._replace(res, new, ns, name))
            return self.send_json(200, obj)
        if method == "DELETE":
            self.read_body()  # DeleteOptions: accepted, not interpreted
            gone = api.delete(res, name, ns)
            return self.send_json(200, gone)
        raise HttpError(405, "MethodNotAllowed", f"{method} is not supported here")

    # --- watch ------------------------------------------------------------------

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def send_event(self, w, ev):
        api = self.api
        data = json.dumps(ev).encode() + b"\n"
        with api.cond:
            # Faults hit object events only: a client must lose data if it mishandles them.
            real = ev["type"] != "BOOKMARK"
            malformed = real and api.malformed_events > 0
            cut = real and not malformed and api.cut_events > 0
            frag = api.fragment
            if malformed:
                api.malformed_events -= 1
            if cut:
                api.cut_events -= 1
        if malformed:
            data = b'{"type":"ADDED","object":{"kind": oops this is not JSON}}\n'
        if cut:
            self.write_chunk(data[:len(data) // 2])
            self.wfile.flush()
            w.closed = w.cut = True
            return
        if frag:
            for i in range(0, len(data), frag):
                self.write_chunk(data[i:i + frag])
                self.wfile.flush()
        else:
            self.write_chunk(data)
            self.wfile.flush()

    def peer_gone(self):
        """A watching client sends nothing after its request: a readable
        socket means it closed (EOF or TLS close_notify)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1) == b""
        except (OSError, ValueError, ssl.SSLError):
            return True

    def watch(self, res, ns, q):
        api = self.api
        lsel = parse_label_selector(q.get("labelSelector"))
        fsel = parse_field_selector(res, q.get("fieldSelector"))
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        timeout = float(q.get("timeoutSeconds") or 1800)
        table = wants_table(self.headers.get("Accept"))
        rv_param = q.get("resourceVersion") or ""
        kind = RESOURCES[res][2]

        def matches(obj):
            md = obj["metadata"]
            return ((ns is None or md.get("namespace") == ns)
                    and label_match(lsel, md.get("labels") or {}) and field_match(fsel, obj))

        def wrap(etype, obj):
            obj = dict(obj)
            obj.setdefault("kind", kind)
            obj.setdefault("apiVersion", api_version(res))
            if table:
                obj = as_table(res, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]})
            return {"type": etype, "object": obj}

        w = Watch()
        with api.cond:
            api.stats["watches"] += 1
            initial = []
            if rv_param in ("", "0"):
                pos = api.rv
                initial = [wrap("ADDED", o) for _, o in api._filtered(res, ns, lsel, fsel)]
            else:
                try:
                    pos = int(rv_param)
                except ValueError:
                    raise HttpError(400, "BadRequest", f"invalid resourceVersion {rv_param!r}")
                if pos < api.floor:
                    gone = status_obj(410, "Expired", f"too old resource version: {pos} "
                                      f"({api.floor})")
                    if api.watch_gone == "http":
                        raise HttpError(410, "Expired", gone["message"])
                    initial = [{"type": "ERROR", "object": gone}]
                    w.closed = True
            api.watches.add(w)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for ev in initial:
                self.send_event(w, ev)
            deadline = time.time() + timeout
            last_bookmark = time.time()
            while True:
                if self.peer_gone():
                    w.closed = True  # faults must not be spent on dead watchers
                with api.cond:
                    while not (w.closed or api.stopping or time.time() >= deadline):
                        if api.history_rvs and api.history_rvs[-1] > pos:
                            break
                        if bookmarks and time.time() - last_bookmark >= api.bookmark_interval:
                            break
                        api.cond.wait(0.1)
                        if self.peer_gone():
                            w.closed = True
                    if w.closed or api.stopping or time.time() >= deadline:
                        break
                    i = bisect.bisect_right(api.history_rvs, pos)
                    evs = [e for e in api.history[i:] if e[1] == res]
                    top = api.rv
                out = [wrap(etype, obj) for _, _, etype, obj in evs if matches(obj)]
                pos = top
                if not out and bookmarks and time.time() - last_bookmark >= api.bookmark_interval:
                    # Every event up to top has been sent: a bookmark may say so.
                    out.append({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": api_version(res),
                        "metadata": {"resourceVersion": str(top)}}})
                    last_bookmark = time.time()
                for ev in out:
                    self.send_event(w, ev)
                    if w.closed:
                        break
            if w.cut:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            with api.cond:
                api.watches.discard(w)

    # --- admin ------------------------------------------------------------------

    def admin(self, method, path):
        api = self.api
        if method == "POST" and path == "/_admin/fault":
            return self.send_json(200, api.fault(self.read_body() or {}, self.connection))
        if method == "GET" and path == "/_admin/objects":
            return self.send_json(200, api.all_objects())
        if method == "POST" and path == "/_admin/objects":
            body = self.read_body() or {}
            return self.send_json(200, {"resourceVersion": api.load(body.get("items", []))})
        if method == "GET" and path == "/_admin/stats":
            with api.cond:
                return self.send_json(200, copy.deepcopy(api.stats))
        if method == "GET" and path == "/_admin/info":
            return self.send_json(200, api.info())
        raise HttpError(404, "NotFound", f"no admin endpoint {method} {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--dir", required=True, help="where certificates, token and kubeconfigs go")
    ap.add_argument("--bookmark-interval", type=float, default=1.0, help="seconds")
    ap.add_argument("--objects", help="a JSON file {\"items\": [...]} loaded at start")
    a = ap.parse_args()
    srv = ApiServer(a.dir, port=a.port, host=a.host, bookmark_interval=a.bookmark_interval)
    if a.objects:
        with open(a.objects) as f:
            srv.load(json.load(f).get("items", []))
    srv.start()
    print(json.dumps(srv.info()), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    srv.stop()


if __name__ == "__main__":
    main()
