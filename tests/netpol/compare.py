#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compare `vakt sim --matrix -o json` results with a step's expected.txt.

Usage: compare.py STEPDIR RESULT.json [RESULT.json]...

Every table of STEPDIR/expected.txt must be covered, pair by pair, by the
results (the union of the JSON files). On a mismatch it prints the expected
and observed tables, a comparison table (X marks a wrong cell, as upstream
does) and one line per wrong pair. Exit 0 if all match, 1 on a mismatch or a
missing / unexpected pair, 2 on unreadable input.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import matrix  # noqa: E402


def load_results(paths):
    got = {}
    for p in paths:
        with open(p, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            raise ValueError("%s: no \"results\" list" % p)
        for i, r in enumerate(doc["results"]):
            try:
                key = (r["from"], r["to"], int(r["port"]), str(r["protocol"]).upper())
                allowed = r["allowed"]
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError("%s: results[%d]: bad entry (%s)" % (p, i, e))
            if not isinstance(allowed, bool):
                raise ValueError("%s: results[%d]: \"allowed\" is not a boolean" % (p, i))
            if key in got and got[key] != allowed:
                raise ValueError("%s: results[%d]: contradicts an earlier result for %s" % (p, i, key))
            got[key] = allowed
    return got


def compare(step, got, out=sys.stdout):
    """Return the number of problems found; print them."""
    problems = 0
    seen = set()
    for t in step.tables():
        wrong, missing = [], []
        observed = {}
        for src in t.pods:
            for dst in t.pods:
                key = (src, dst, t.port, t.proto)
                seen.add(key)
                if key not in got:
                    missing.append((src, dst))
                    continue
                observed[(src, dst)] = got[key]
                if got[key] != t.allowed[(src, dst)]:
                    wrong.append((src, dst))
        if not wrong and not missing:
            continue
        problems += len(wrong) + len(missing)
        out.write("\n%s: port %d %s: %d wrong, %d missing\n" %
                  (step.id, t.port, t.proto, len(wrong), len(missing)))
        out.write("expected:\n" + matrix.format_table(t.port, t.proto, t.pods, t.allowed))
        out.write("observed (? = no result):\n" + matrix.format_table(
            t.port, t.proto, t.pods, t.allowed,
            mark=lambda s, d: "?" if (s, d) not in observed else ("." if observed[(s, d)] else "X")))
        out.write("comparison (X = wrong):\n" + matrix.format_table(
            t.port, t.proto, t.pods, t.allowed,
            mark=lambda s, d: "?" if (s, d) not in observed else ("X" if (s, d) in wrong else ".")))
        for s, d in wrong:
            out.write("  %s -> %s %d/%s: expected %s, vakt says %s\n" %
                      (s, d, t.port, t.proto, "allowed" if t.allowed[(s, d)] else "denied",
                       "allowed" if observed[(s, d)] else "denied"))
        for s, d in missing:
            out.write("  %s -> %s %d/%s: no result\n" % (s, d, t.port, t.proto))
    probed = {(k[2], k[3]) for k in seen}
    extra = sorted(k for k in got if (k[2], k[3]) in probed and k not in seen)
    for k in extra:
        out.write("  %s: unexpected pair %s -> %s %d/%s (not a pod of the model)\n" %
                  (step.id, k[0], k[1], k[2], k[3]))
    return problems + len(extra)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    try:
        step = matrix.step_at(argv[1])
        got = load_results(argv[2:])
    except (matrix.ScenarioError, OSError, ValueError) as e:
        sys.stderr.write("compare.py: %s\n" % e)
        return 2
    return 1 if compare(step, got) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
