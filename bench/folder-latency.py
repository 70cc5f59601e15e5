#!/usr/bin/env python3
"""Folder sync latency: a new 4 KiB file saved on one peer until it is complete on the other.

Two `ferry run` daemons on loopback (relays disabled) sync one folder; the script writes
N files one after another on peer A and measures until each has its full content on peer B.
usage: bench/folder-latency.py [N]   (FERRY_BIN selects the binary; default the release build)
"""
import os, shutil, signal, statistics, subprocess, sys, tempfile, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/ferry-target"))
ferry = os.environ.get("FERRY_BIN", os.path.join(target, "release", "ferry"))
work = tempfile.mkdtemp()
base = ["--relay", "disabled", "--bind", "127.0.0.1:0"]


def cmd(home, *args):
    return [ferry, "--home", os.path.join(work, home), *base, *args]


daemons = []
try:
    for home in ("a", "b"):
        p = subprocess.Popen(cmd(home, "run"), stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            if "running" in line:
                break
        daemons.append(p)
    a_dir, b_dir = os.path.join(work, "A"), os.path.join(work, "B")
    os.makedirs(a_dir)
    ticket = subprocess.run(cmd("a", "folder", "share", a_dir), capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(cmd("b", "folder", "join", ticket, b_dir), capture_output=True, check=True)
    payload = os.urandom(4096)
    times = []
    for i in range(N):
        name = f"file-{i:03}.bin"
        t0 = time.monotonic()
        with open(os.path.join(a_dir, name), "wb") as f:
            f.write(payload)
        dest = os.path.join(b_dir, name)
        while True:
            try:
                if os.path.getsize(dest) == 4096:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > 30:
                raise SystemExit(f"{name} did not arrive within 30 s")
            time.sleep(0.002)
        times.append(time.monotonic() - t0)
        time.sleep(0.2)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(f"ferry folder sync, new 4 KiB file, {N} runs: median {statistics.median(times)*1000:.0f} ms, p95 {p95*1000:.0f} ms")
finally:
    for p in daemons:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=20)
    shutil.rmtree(work, ignore_errors=True)
