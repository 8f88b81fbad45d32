#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Real TCP and UDP traffic between pod namespaces routed by a node
namespace (ptp, /32 routes) reproduces the upstream reachability matrices
of tests/netpol under vaktd --objects: ipBlock, named ports, egress,
several policies at once, policy updates."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
import netpol_e2e  # noqa: E402

SCENARIOS = [
    "02-default-deny-all",
    "06-allow-from-other-namespace",
    "10-podselector-and-nsselector",
    "14-ports",
    "15-stacked-overlapping-podselectors",
    "17-ingress-one-named-port",
    "19-egress-one-named-port",
    "20-updated-policy",
    "27-ingress-egress-together",
    "34-egress-to-cidr",
    "35-egress-cidr-except",
    "44-udp-ports",
]

if __name__ == "__main__":
    e2elib.main_wrapper(lambda: netpol_e2e.run("routed", SCENARIOS))
