#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The committed scenario data is what gen_scenarios.py produces, and sound.

Regenerates everything into a temporary directory and fails when a committed
file differs (someone edited data by hand, or changed the generator without
regenerating), when an expected cell disagrees with the naive reference
evaluator (refeval.py), or when matrix.py's YAML reader and PyYAML (if
installed) read a file differently. Also checks that every step has tables
for every ordered pair of the nine pods, a pod to itself allowed.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_scenarios  # noqa: E402
import matrix  # noqa: E402


def test_generated_data_is_current_and_crosschecked():
    return gen_scenarios.main(["gen_scenarios.py", "--check"]) == 0


def test_every_table_is_complete_with_self_allowed():
    ok = True
    steps = matrix.steps()
    if len(matrix.scenarios()) < 50:
        print("only %d scenarios" % len(matrix.scenarios()))
        ok = False
    for s in steps:
        pods = ["%s/%s" % (p.ns, p.name) for p in s.pods()]
        if len(pods) != 9:
            print("%s: %d pods in base" % (s.id, len(pods)))
            ok = False
        for t in s.tables():
            if sorted(t.pods) != sorted(pods):
                print("%s: table %d/%s pods %s" % (s.id, t.port, t.proto, t.pods))
                ok = False
            for p in t.pods:
                if not t.allowed[(p, p)]:
                    print("%s: %s -> itself denied in %d/%s" % (s.id, p, t.port, t.proto))
                    ok = False
    return ok


def main():
    failed = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                ok = fn()
            except (matrix.ScenarioError, OSError, KeyError, ValueError) as e:
                print("error: %s" % e)
                ok = False
            print("%s %s" % ("PASS" if ok else "FAIL", name))
            failed += 0 if ok else 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
