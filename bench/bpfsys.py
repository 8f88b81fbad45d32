# SPDX-License-Identifier: Apache-2.0
"""The few bpf(2) calls the benchmark helpers make, with raw syscalls.

Debian's bpftool 7.1 cannot create tcx links nor show where the JIT put a
program, and the benchmarks need both (bench/tcx_empty.py,
bench/jit_place.py); this is what they share. x86_64 only (syscall
number), like the benchmarks.
"""
import ctypes
import os
import struct

NR_BPF = 321  # x86_64
PROG_LOAD, OBJ_PIN, PROG_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, LINK_CREATE = 5, 6, 13, 15, 28
SCHED_CLS = 3
ATTR_LEN = 160
INFO_LEN = 256

_libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    """bpf(cmd, attr): the syscall's return value (a new fd for most commands)."""
    buf = ctypes.create_string_buffer(bytes(attr).ljust(ATTR_LEN, b"\0"), ATTR_LEN)
    r = _libc.syscall(NR_BPF, cmd, buf, ATTR_LEN)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, "bpf cmd %d: %s" % (cmd, os.strerror(e)))
    return r


def insn(code, imm=0):
    """One BPF instruction on r0 (all the helpers need)."""
    return struct.pack("<BBhi", code, 0, 0, imm)


MOV64_IMM_R0 = 0xb7
EXIT = 0x95


def prog_load(insns, name, prog_type=SCHED_CLS):
    """Load a GPL program of raw instructions; returns its fd."""
    ib = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack("<IIQQIIQII16s", prog_type, len(insns) // 8, ctypes.addressof(ib),
                       ctypes.addressof(lic), 0, 0, 0, 0, 0, name.encode()[:15])
    return bpf(PROG_LOAD, attr)


def obj_pin(fd, path):
    p = ctypes.create_string_buffer(path.encode())
    bpf(OBJ_PIN, struct.pack("<QII", ctypes.addressof(p), fd, 0))


def prog_info(fd, req=b""):
    """struct bpf_prog_info of fd, as bytes; req presets fields (array pointers)."""
    info = ctypes.create_string_buffer(req.ljust(INFO_LEN, b"\0"), INFO_LEN)
    bpf(OBJ_GET_INFO_BY_FD, struct.pack("<IIQ", fd, INFO_LEN, ctypes.addressof(info)))
    return info.raw


def prog_id(fd):
    return struct.unpack_from("<I", prog_info(fd), 4)[0]


def prog_fd_by_id(prog_id_):
    return bpf(PROG_GET_FD_BY_ID, struct.pack("<I", prog_id_))
