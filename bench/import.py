#!/usr/bin/env python3
"""Sharing: from `ferry send` starting to the ticket being printed (every file hashed and
imported), next to `b3sum --num-threads 1` over the same data, the hashing floor.

Runs each workload RUNS times, alternating, with the page cache warm (the data is read once
first), each Ferry run in a fresh home. Ferry runs with relays disabled on loopback.
usage: bench/import.py DATA [--quick]   (FERRY_BIN, B3SUM select the binaries)
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

DATA = sys.argv[1]
RUNS = int(os.environ.get("RUNS", "1" if "--quick" in sys.argv else "3"))
FERRY = os.environ["FERRY_BIN"]
B3SUM = os.environ["B3SUM"]


def files_of(path):
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)


def warm(path):
    for f in files_of(path):
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass


def ferry_share(path):
    home = tempfile.mkdtemp()
    try:
        t0 = time.monotonic()
        p = subprocess.Popen([FERRY, "--home", home, "--relay", "disabled", "--bind", "127.0.0.1:0", "send", path],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = p.stdout.readline()
        took = time.monotonic() - t0
        p.terminate()
        p.wait(timeout=30)
        assert line.startswith("blob"), f"no ticket: {line!r}"
        return took
    finally:
        shutil.rmtree(home, ignore_errors=True)


def b3sum(path):
    files = files_of(path)
    t0 = time.monotonic()
    # One process, files in batches (the argument list has a limit), one thread.
    for i in range(0, len(files), 2000):
        subprocess.run([B3SUM, "--num-threads", "1", *files[i:i + 2000]], stdout=subprocess.DEVNULL, check=True)
    return time.monotonic() - t0


rows = []
big, small = os.path.join(DATA, "big", "big.bin"), os.path.join(DATA, "small")
workloads = [(f"{os.path.getsize(big) >> 20} MiB file", big), (f"{len(files_of(small)):,} small files", small)]
for name, path in workloads:
    warm(path)
    f, b = [], []
    for _ in range(RUNS):
        f.append(ferry_share(path))
        b.append(b3sum(path))
    rows.append((name, statistics.median(f), statistics.median(b)))
print(f"| workload | Ferry share to ticket (s) | b3sum --num-threads 1 (s) | Ferry/b3sum |  (median of {RUNS})")
print("|---|---|---|---|")
for name, f, b in rows:
    print(f"| {name} | {f:.2f} | {b:.2f} | {f / b:.2f} |")
