#!/usr/bin/env python3
"""Generates the benchmark data deterministically.

usage: gen-data.py DIR [--quick]      (--quick: 64 MiB, 1,000 and 2,000 files)
  DIR/big/big.bin        1 GiB of pseudo-random bytes
  DIR/small/d00..d19/    10,000 files of 1-9 KiB
  DIR/many/d000..d999/   100,000 files of 1-4 KiB, 100 per directory
"""
import os
import random
import sys

root = sys.argv[1]
quick = "--quick" in sys.argv[2:]
big_mib = 64 if quick else 1024
small_n = 1_000 if quick else 10_000
many_n = 2_000 if quick else 100_000
big = os.path.join(root, "big", "big.bin")
if not os.path.exists(big):
    os.makedirs(os.path.dirname(big), exist_ok=True)
    rng = random.Random(7)
    with open(big + ".tmp", "wb") as f:
        for _ in range(big_mib):
            f.write(rng.randbytes(1 << 20))
    os.rename(big + ".tmp", big)


def files(name, n, seed, dir_of, file_of, max_kib):
    """n files of 1 KiB to max_kib KiB under root/name, laid out by dir_of and file_of."""
    top = os.path.join(root, name)
    if os.path.exists(top + ".done"):
        return
    rng = random.Random(seed)
    for i in range(n):
        d = os.path.join(top, dir_of(i))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, file_of(i)), "wb") as f:
            f.write(rng.randbytes(rng.randint(1024, max_kib * 1024)))
    open(top + ".done", "w").close()


files("small", small_n, 42, lambda i: f"d{i % 20:02d}", lambda i: f"f{i:05d}.bin", 9)
files("many", many_n, 43, lambda i: f"d{i // 100:03d}", lambda i: f"f{i:06d}.bin", 4)
