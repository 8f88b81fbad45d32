#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The same matrices with the pods' veths enslaved to a bridge in the node
namespace (pods talk at layer 2): local endpoints are found by address, so
enforcement does not depend on routing through the node."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
import netpol_e2e  # noqa: E402

SCENARIOS = [
    "02-default-deny-all",
    "09-podselector-or-nsselector",
    "17-ingress-one-named-port",
    "19-egress-one-named-port",
    "25-deny-egress-pod-selector",
    "27-ingress-egress-together",
    "35-egress-cidr-except",
    "36-cidr-and-except-overlap",
    "43-udp-default-deny-ingress",
]

if __name__ == "__main__":
    e2elib.main_wrapper(lambda: netpol_e2e.run("bridged", SCENARIOS))
