#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reachability scenarios of tests/netpol: discovery, expected tables, cases.

Used by test_netpol_sim.sh (vakt sim) and meant to be imported by the
dataplane end-to-end tests, which replay the same matrices with real
traffic. Standard library only.

Layout (see README.md):
  tests/netpol/base.yaml                       namespaces x, y, z and pods a, b, c
  tests/netpol/scenarios/NN-name/policies.yaml policies of a one-step scenario
  tests/netpol/scenarios/NN-name/expected.txt  truth tables
  tests/netpol/scenarios/NN-name/base.yaml     optional: replaces ../../base.yaml
  tests/netpol/scenarios/NN-name/steps/K/...   the same files, one set per step

Library use:
  import matrix
  for step in matrix.steps():            # every step of every scenario
      step.manifests                       # [base file, policies file]
      step.pods()                          # [Pod(ns, name, ip, labels, ports)]
      for c in step.cases():               # Case(src, dst, port, proto, allowed)
          ...

CLI (used by the runner):
  matrix.py steps [ROOT]        one step directory per line
  matrix.py plan [ROOT]         per step: "DIR<TAB>FILE[,FILE]<TAB>PORT/PROTO[ PORT/PROTO]"
  matrix.py manifests STEPDIR   the manifest files to load for a step
  matrix.py tables STEPDIR      "PORT PROTO" per truth table of the step
  matrix.py cases STEPDIR       "FROM TO PORT PROTO allowed|denied" per pair
  matrix.py pods STEPDIR        "NS/NAME IP" per pod
"""

import collections
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ROOT = HERE

Case = collections.namedtuple("Case", "src dst port proto allowed")
Pod = collections.namedtuple("Pod", "ns name ip labels ports node")
Table = collections.namedtuple("Table", "port proto pods allowed")
# Table.allowed: dict (src, dst) -> bool, for every ordered pair of Table.pods


class ScenarioError(Exception):
    pass


# --------------------------------------------------------------------------
# A reader for the YAML subset the scenario files are written in: block
# mappings and sequences, plain / single / double quoted scalars, {} and [],
# comments and "---" document separators. gen_scenarios.py checks, when
# PyYAML is present, that this reader and PyYAML agree on every file.
# --------------------------------------------------------------------------

_INT_RE = re.compile(r"^[-+]?[0-9]+$")


def _scalar(text, where):
    text = text.strip()
    if text == "{}":
        return {}
    if text == "[]":
        return []
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise ScenarioError("%s: unterminated string" % where)
        body = text[1:-1]
        return body.replace('\\"', '"').replace("\\\\", "\\")
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise ScenarioError("%s: unterminated string" % where)
        return text[1:-1].replace("''", "'")
    if text in ("null", "~", ""):
        return None
    if text in ("true", "false"):
        return text == "true"
    if _INT_RE.match(text):
        return int(text)
    return text


def _strip_comment(line):
    # a '#' starts a comment at line start or after a space, outside quotes
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] == " "):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _split_key(text, where):
    m = re.match(r'^("[^"]*"|\'[^\']*\'|[^:\'"]+):(?:\s+(.*))?$', text)
    if not m:
        return None
    return _scalar(m.group(1), where), (m.group(2) or "")


class _Lines:
    def __init__(self, lines, path):
        self.lines = lines  # list of (lineno, indent, text)
        self.i = 0
        self.path = path

    def peek(self):
        return self.lines[self.i] if self.i < len(self.lines) else None


def _parse_node(ls, indent):
    cur = ls.peek()
    if cur is None or cur[1] < indent:
        return None
    if cur[2].startswith("- ") or cur[2] == "-":
        return _parse_seq(ls, cur[1])
    return _parse_map(ls, cur[1])


def _parse_map(ls, indent):
    out = {}
    while True:
        cur = ls.peek()
        if cur is None or cur[1] < indent:
            return out
        lineno, ind, text = cur
        where = "%s:%d" % (ls.path, lineno)
        if ind > indent:
            raise ScenarioError("%s: unexpected indentation" % where)
        if text.startswith("- "):
            return out
        kv = _split_key(text, where)
        if kv is None:
            raise ScenarioError("%s: expected 'key: value'" % where)
        key, rest = kv
        ls.i += 1
        if key in out:
            raise ScenarioError("%s: duplicate key %r" % (where, key))
        if rest:
            out[key] = _scalar(rest, where)
        else:
            nxt = ls.peek()
            if nxt is not None and (nxt[1] > indent or
                                    (nxt[1] == indent and nxt[2].startswith("- "))):
                out[key] = _parse_node(ls, nxt[1])
            else:
                out[key] = None


def _parse_seq(ls, indent):
    out = []
    while True:
        cur = ls.peek()
        if cur is None or cur[1] != indent or not (cur[2].startswith("- ") or cur[2] == "-"):
            return out
        lineno, ind, text = cur
        where = "%s:%d" % (ls.path, lineno)
        item = text[2:].strip() if text != "-" else ""
        if not item:
            ls.i += 1
            nxt = ls.peek()
            out.append(_parse_node(ls, nxt[1]) if nxt and nxt[1] > indent else None)
            continue
        kv = _split_key(item, where)
        if kv is None:
            ls.i += 1
            out.append(_scalar(item, where))
            continue
        # "- key: value" opens a mapping whose keys sit at indent + 2
        ls.lines[ls.i] = (lineno, indent + 2, item)
        out.append(_parse_map(ls, indent + 2))


def parse_yaml_documents(text, path="<string>"):
    """Return the list of documents (dicts) in a YAML-subset text."""
    docs, cur = [], []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if raw.rstrip() == "---":
            docs.append(cur)
            cur = []
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ScenarioError("%s:%d: tab in indentation" % (path, lineno))
        line = _strip_comment(raw)
        if not line.strip():
            continue
        cur.append((lineno, len(line) - len(line.lstrip(" ")), line.strip()))
    docs.append(cur)
    out = []
    for lines in docs:
        if not lines:
            continue
        ls = _Lines(lines, path)
        node = _parse_node(ls, lines[0][1])
        if ls.peek() is not None:
            raise ScenarioError("%s:%d: could not parse" % (path, ls.peek()[0]))
        out.append(node)
    return out


def load_yaml_file(path):
    with open(path, encoding="utf-8") as f:
        return parse_yaml_documents(f.read(), path)


def load_objects(paths):
    """All objects of the manifest files, List kinds flattened."""
    objs = []
    for p in paths:
        for d in load_yaml_file(p):
            if isinstance(d, dict) and d.get("kind") == "List":
                objs.extend(d.get("items") or [])
            elif d is not None:
                objs.append(d)
    return objs


# --------------------------------------------------------------------------
# expected.txt: truth tables in the text format of `vakt sim --matrix`
# --------------------------------------------------------------------------

_HDR_RE = re.compile(r"^#\s*port\s+(\d+)\s+(TCP|UDP|SCTP)\s*$")


def parse_tables(text, path="<string>"):
    tables, i = [], 0
    lines = text.splitlines()
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        m = _HDR_RE.match(line)
        if not m:
            raise ScenarioError("%s:%d: expected '# port N PROTO'" % (path, i))
        port, proto = int(m.group(1)), m.group(2)
        if i >= len(lines):
            raise ScenarioError("%s:%d: table without header row" % (path, i))
        cols = lines[i].split()
        i += 1
        allowed = {}
        rows = []
        while i < len(lines) and lines[i].strip() and not lines[i].startswith("#"):
            cells = lines[i].split()
            if len(cells) != len(cols) + 1:
                raise ScenarioError("%s:%d: %d cells, expected %d" %
                                    (path, i + 1, len(cells) - 1, len(cols)))
            src = cells[0]
            rows.append(src)
            for dst, cell in zip(cols, cells[1:]):
                if cell not in (".", "X"):
                    raise ScenarioError("%s:%d: cell %r is not '.' or 'X'" % (path, i + 1, cell))
                allowed[(src, dst)] = cell == "."
            i += 1
        if sorted(rows) != sorted(cols):
            raise ScenarioError("%s: table %d/%s: rows and columns differ" % (path, port, proto))
        tables.append(Table(port, proto, cols, allowed))
    return tables


def format_table(port, proto, pods, allowed, mark=None):
    """Render one truth table; mark(src, dst) may override a cell."""
    w = max(len(p) for p in pods) + 2
    out = ["# port %d %s" % (port, proto), " " * w + " ".join(pods)]
    for src in pods:
        cells = []
        for dst in pods:
            c = mark(src, dst) if mark else None
            if c is None:
                c = "." if allowed[(src, dst)] else "X"
            cells.append(c.ljust(len(dst)))
        out.append(src.ljust(w) + " ".join(cells).rstrip())
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# scenarios and steps
# --------------------------------------------------------------------------

class Step:
    """One state of a scenario: the manifests in force and the tables expected."""

    def __init__(self, root, scenario, number, path):
        self.root = root
        self.scenario = scenario  # "NN-name"
        self.number = number      # step number, 1 for single-step scenarios
        self.path = path          # directory with policies.yaml and expected.txt

    @property
    def id(self):
        return self.scenario if self.path.endswith(self.scenario) else \
            "%s/step-%d" % (self.scenario, self.number)

    @property
    def base(self):
        """The scenario's namespaces and pods: an override or the shared base."""
        for d in (self.path, os.path.join(self.root, "scenarios", self.scenario)):
            p = os.path.join(d, "base.yaml")
            if os.path.isfile(p):
                return p
        return os.path.join(self.root, "base.yaml")

    @property
    def policies(self):
        return os.path.join(self.path, "policies.yaml")

    @property
    def manifests(self):
        """Files to load; a policies file with no object (all deleted) is left out."""
        files = [self.base]
        if load_yaml_file(self.policies):
            files.append(self.policies)
        return files

    def objects(self):
        return load_objects(self.manifests)

    def tables(self):
        p = os.path.join(self.path, "expected.txt")
        with open(p, encoding="utf-8") as f:
            return parse_tables(f.read(), p)

    def pods(self):
        out = []
        for o in load_objects([self.base]):
            if o.get("kind") != "Pod":
                continue
            md, spec, st = o["metadata"], o.get("spec") or {}, o.get("status") or {}
            ports = []
            for c in spec.get("containers") or []:
                for p in c.get("ports") or []:
                    ports.append((p.get("name"), p["containerPort"], p.get("protocol", "TCP")))
            out.append(Pod(md["namespace"], md["name"], st.get("podIP"),
                           dict(md.get("labels") or {}), ports, spec.get("nodeName")))
        return out

    def cases(self):
        for t in self.tables():
            for src in t.pods:
                for dst in t.pods:
                    yield Case(src, dst, t.port, t.proto, t.allowed[(src, dst)])

    def __repr__(self):
        return "Step(%s)" % self.id


def scenarios(root=DEFAULT_ROOT):
    d = os.path.join(root, "scenarios")
    return sorted(n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n)))


def steps(root=DEFAULT_ROOT):
    out = []
    for name in scenarios(root):
        sdir = os.path.join(root, "scenarios", name)
        stepdir = os.path.join(sdir, "steps")
        if os.path.isdir(stepdir):
            nums = sorted(int(n) for n in os.listdir(stepdir) if n.isdigit())
            if not nums or nums != list(range(1, len(nums) + 1)):
                raise ScenarioError("%s: steps must be numbered 1..N" % stepdir)
            out.extend(Step(root, name, n, os.path.join(stepdir, str(n))) for n in nums)
        else:
            out.append(Step(root, name, 1, sdir))
    return out


def step_at(path, root=DEFAULT_ROOT):
    """The Step for a directory given on the command line."""
    path = os.path.abspath(path)
    for s in steps(root):
        if os.path.abspath(s.path) == path:
            return s
    raise ScenarioError("%s: not a scenario step directory" % path)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "steps":
            for s in steps(args[0] if args else DEFAULT_ROOT):
                print(s.path)
            return 0
        if cmd == "plan":
            # all or nothing: a broken step must not shorten the plan silently
            lines = ["%s\t%s\t%s" % (s.path, ",".join(s.manifests),
                                     " ".join("%d/%s" % (t.port, t.proto) for t in s.tables()))
                     for s in steps(args[0] if args else DEFAULT_ROOT)]
            print("\n".join(lines))
            return 0
        if not args:
            sys.stderr.write("matrix.py %s: missing STEPDIR\n" % cmd)
            return 2
        step = step_at(args[0])
        if cmd == "manifests":
            for f in step.manifests:
                print(f)
        elif cmd == "tables":
            for t in step.tables():
                print(t.port, t.proto)
        elif cmd == "cases":
            for c in step.cases():
                print(c.src, c.dst, c.port, c.proto, "allowed" if c.allowed else "denied")
        elif cmd == "pods":
            for p in step.pods():
                print("%s/%s %s" % (p.ns, p.name, p.ip))
        else:
            sys.stderr.write("matrix.py: unknown command %r\n" % cmd)
            return 2
    except (ScenarioError, OSError, KeyError) as e:
        sys.stderr.write("matrix.py: %s\n" % e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
