#!/usr/bin/env python3
"""Writes the seeds of the `walk` fuzz target: byte 0 = index into
Format::NAMES, bytes 1-8 = root table address, bytes 9-16 = virtual address
(little-endian), then the memory image. Tables are encoded by hand from the
manuals (independently of vmsim's encoder)."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "walk")
NAMES = ["x86-32", "x86-64", "x86-64-5level", "sv32", "sv39", "sv48", "sv57"]


def seed(name, arch, root, va, mem):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([NAMES.index(arch)]) + struct.pack("<QQ", root, va) + bytes(mem))


# Sv39 (RISC-V privileged spec): V R W X U G A D in bits 0-7, PPN from bit 10.
mem = bytearray(0x4000)
put = lambda t, i, v: struct.pack_into("<Q", mem, t + 8 * i, v)
put(0x1000, 1, (0x2 << 10) | 1)                      # root[1] -> 0x2000
put(0x2000, 1, (0x3 << 10) | 1)                      # L1[1] -> 0x3000
put(0x3000, 1, (0x80123 << 10) | 0xdf)               # 4 KiB page
put(0x2000, 2, (0x80200 << 10) | 0xc7)               # 2 MiB megapage
put(0x2000, 3, (0x80201 << 10) | 0x43)               # misaligned megapage
seed("sv39-4k", "sv39", 0x1000, 0x40201ABC, mem)
seed("sv39-2m", "sv39", 0x1000, 0x40415678, mem)
seed("sv39-misaligned", "sv39", 0x1000, 0x40600000, mem)

# x86-64 4-level (Intel SDM 4.5): P=1 RW=2 US=4 A=0x20 D=0x40 PS=0x80.
mem = bytearray(0x5000)
put(0x1000, 0, 0x2000 | 7)                           # PML4[0] -> PDPT
put(0x2000, 0, 0x3000 | 7)                           # PDPT[0] -> PD
put(0x3000, 2, 0x4000 | 7)                           # PD[2] -> PT
put(0x4000, 3, 0x123000 | 0x67)                      # PT[3] -> 4 KiB page
put(0x3000, 3, 0x600000 | 0xe7)                      # PD[3]: 2 MiB page (PS)
seed("x86-64-4k", "x86-64", 0x1000, 0x403ABC, mem)
seed("x86-64-2m", "x86-64", 0x1000, 0x612345, mem)

# x86 32-bit (Intel SDM 4.3): 4-byte entries, PS = 4 MiB page.
mem = bytearray(0x3000)
struct.pack_into("<I", mem, 0x1000 + 4 * 1, 0x2000 | 7)       # PDE[1] -> PT
struct.pack_into("<I", mem, 0x2000 + 4 * 5, 0x7000 | 0x67)    # PTE[5] -> page
struct.pack_into("<I", mem, 0x1000 + 4 * 2, 0x800000 | 0xe7)  # PDE[2]: 4 MiB page
seed("x86-32-4k", "x86-32", 0x1000, 0x405123, mem)
seed("x86-32-4m", "x86-32", 0x1000, 0x812345, mem)
