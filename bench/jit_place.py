#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where the kernel's JIT puts programs, and moving it.

  jit_place.py where ID...      address and length of each program's main
                                JITed image (BPF_OBJ_GET_INFO_BY_FD:
                                jited_ksyms, jited_func_lens), e.g.
                                "73228 ffffffffc0025bb4 2160"
  jit_place.py filler BYTES PIN load a do-nothing program of about BYTES
                                of JITed code and pin it at PIN (bpffs)
  jit_place.py fill DIR N SEED  N such programs of random sizes (64 B to
                                4 KiB, drawn from SEED), pinned in DIR

Identical programs cost measurably different amounts at different
addresses (docs/datapath.md, "Where the image lands"), so the live
benchmarks print where each instance landed and can load a filler of
random sizes before reloading vaktd's programs. The JIT's allocator
takes the first free space that fits, from the start of its executable
memory, where earlier programs left holes: one large filler only takes one
hole and leaves the next load a handful of recurring places, while many
small ones of random sizes occupy a random part of the holes and of the
space after them, so the next programs land at an address drawn anew.
/proc/kallsyms cannot tell identical programs apart (their symbols carry
the same tag) and bpftool 7.1 shows no addresses. Needs root.
"""
import ctypes
import os
import random
import struct
import sys

import bpfsys

# struct bpf_prog_info: nr_jited_ksyms, nr_jited_func_lens, jited_ksyms, jited_func_lens
OFF_NR_KSYMS = 104


def main_image(prog_id):
    try:
        fd = bpfsys.prog_fd_by_id(prog_id)
    except OSError as e:
        raise OSError(e.errno, "program id %d: %s" % (prog_id, e.strerror)) from None
    try:
        nk, nl = struct.unpack_from("<II", bpfsys.prog_info(fd), OFF_NR_KSYMS)
        if not nk or not nl:
            raise OSError(0, "program %d is not JITed" % prog_id)
        ksyms = (ctypes.c_uint64 * nk)()
        lens = (ctypes.c_uint32 * nl)()
        req = bytearray(bpfsys.INFO_LEN)
        struct.pack_into("<IIQQ", req, OFF_NR_KSYMS, nk, nl,
                         ctypes.addressof(ksyms), ctypes.addressof(lens))
        bpfsys.prog_info(fd, bytes(req))
        return ksyms[0], lens[0]
    finally:
        os.close(fd)


def load_filler(nbytes, pin):
    # r0 = 7 (JITed to a 5-byte mov) repeated, then exit
    insns = bpfsys.insn(bpfsys.MOV64_IMM_R0, 7) * max(nbytes // 5, 1) + bpfsys.insn(bpfsys.EXIT)
    fd = bpfsys.prog_load(insns, "vkt_jit_filler")
    try:
        bpfsys.obj_pin(fd, pin)
    finally:
        os.close(fd)


def fill(directory, n, seed):
    rng = random.Random(seed)
    os.makedirs(directory, exist_ok=True)
    for i in range(n):
        load_filler(rng.randrange(64, 4097), os.path.join(directory, "f%d" % i))


def main():
    try:
        run()
    except (OSError, ValueError) as e:
        sys.exit("jit_place.py: %s" % e)


def run():
    if len(sys.argv) >= 3 and sys.argv[1] == "where":
        for arg in sys.argv[2:]:
            addr, length = main_image(int(arg))
            print("%s %x %d" % (arg, addr, length))
    elif len(sys.argv) == 4 and sys.argv[1] == "filler":
        load_filler(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "fill":
        fill(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: jit_place.py where PROG_ID... | filler BYTES PIN | fill DIR N SEED")


if __name__ == "__main__":
    main()
