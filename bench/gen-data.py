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

small = os.path.join(root, "small")
if not os.path.exists(small + ".done"):
    rng = random.Random(42)
    for i in range(small_n):
        d = os.path.join(small, f"d{i % 20:02d}")
        os.makedirs(d, exist_ok=True)
        size = rng.randint(1024, 9 * 1024)
        with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
            f.write(rng.randbytes(size))
    open(small + ".done", "w").close()

many = os.path.join(root, "many")
if not os.path.exists(many + ".done"):
    rng = random.Random(43)
    for i in range(many_n):
        d = os.path.join(many, f"d{i // 100:03d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
            f.write(rng.randbytes(rng.randint(1024, 4 * 1024)))
    open(many + ".done", "w").close()
