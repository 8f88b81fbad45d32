#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Empty tcx programs on veths, the baseline of bench/bench_live_stats.sh.

  tcx_empty.py attach DIR IFNAME...

Loads two programs that return TCX_NEXT at once (one per hook), links them
to the ingress and egress of every IFNAME with BPF_LINK_CREATE, the way
vaktd attaches, and pins the links in DIR (they keep the programs attached
after this exits); prints the two program ids, ingress then egress.
"""
import os
import socket
import struct
import sys

import bpfsys

TCX_INGRESS, TCX_EGRESS = 46, 47


def load_empty(name):
    # r0 = -1 (TC_ACT_UNSPEC, which tcx takes as TCX_NEXT); exit
    return bpfsys.prog_load(bpfsys.insn(bpfsys.MOV64_IMM_R0, -1) + bpfsys.insn(bpfsys.EXIT), name)


def attach(directory, ifnames):
    os.makedirs(directory, exist_ok=True)
    progs = {"ingress": load_empty("vkt_bstat_e_in"), "egress": load_empty("vkt_bstat_e_out")}
    for ifname in ifnames:
        idx = socket.if_nametoindex(ifname)
        for hook, at in (("ingress", TCX_INGRESS), ("egress", TCX_EGRESS)):
            link = bpfsys.bpf(bpfsys.LINK_CREATE, struct.pack("<IIII", progs[hook], idx, at, 0))
            bpfsys.obj_pin(link, "%s/%d-%s" % (directory, idx, hook))
    print(bpfsys.prog_id(progs["ingress"]), bpfsys.prog_id(progs["egress"]))


def main():
    if len(sys.argv) < 4 or sys.argv[1] != "attach":
        sys.exit("usage: tcx_empty.py attach DIR IFNAME...")
    try:
        attach(sys.argv[2], sys.argv[3:])
    except OSError as e:
        sys.exit("tcx_empty.py: %s" % e)


if __name__ == "__main__":
    main()
