#!/usr/bin/env python3
"""Writes sv39.img: a 16 KiB physical-memory image holding Sv39 page tables,
encoded by hand from the RISC-V privileged specification (section "Sv39:
Page-Based 39-bit Virtual-Memory System"), independently of vmsim's encoder.

PTE: bit 0 V, 1 R, 2 W, 3 X, 4 U, 5 G, 6 A, 7 D, 8-9 RSW, PPN in bits 10-53
(PPN[0] 10-18, PPN[1] 19-27, PPN[2] 28-53). Entries are little-endian u64.
Root table at 0x1000, a level-1 table at 0x2000, a level-0 table at 0x3000.

Mappings (VA -> expected result), used by the CLI tests:
  0x40201abc -> PA 0x80123abc  (4 KiB page: VPN[2]=1, VPN[1]=1, VPN[0]=1)
  0x40202abc -> not present at level 0 (leaf table entry 2 is zero)
  0xc0000000 -> not present at level 2 (root entry 3 is zero)
  0x40415678 -> PA 0x80215678  (2 MiB megapage at level 1: VPN[0] passes through)
  0x40600000 -> misaligned superpage at level 1 (PPN[0] = 1 in a level-1 leaf)
  0x40800000 -> reserved encoding at level 1 (W without R)
"""
import struct

V, R, W, X, U, G, A, D = (1 << i for i in range(8))

def pte(ppn, flags):
    return (ppn << 10) | flags

mem = bytearray(0x4000)

def put(table, index, value):
    struct.pack_into("<Q", mem, table + 8 * index, value)

put(0x1000, 1, pte(0x2000 >> 12, V))                      # root[1] -> level-1 table
put(0x2000, 1, pte(0x3000 >> 12, V))                      # L1[1] -> level-0 table
put(0x3000, 1, pte(0x80123, V | R | W | X | U | A | D))   # 4 KiB page
put(0x2000, 2, pte(0x80200, V | R | W | A | D))           # 2 MiB megapage, aligned
put(0x2000, 3, pte(0x80201, V | R | A))                   # misaligned megapage
put(0x2000, 4, pte(0x80400, V | W))                       # reserved: W without R

with open(__file__.rsplit("/", 1)[0] + "/sv39.img" if "/" in __file__ else "sv39.img", "wb") as f:
    f.write(mem)
