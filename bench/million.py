#!/usr/bin/env python3
"""A folder of N small files (1,000,000 by default), Ferry alone: see bench/million.sh.

Meant to run inside a private network namespace with only loopback (bench/million.sh does).
usage: bench/million.py N          (env: BENCH_WORK, FERRY_BIN; IDLE_S=s: also both daemons'
       CPU seconds over s idle seconds at the end and their RSS after them, a window to attach a profiler to the pids
       printed at the start; PROFILE_LATER=dir: both daemons sampled by perf while the later
       files arrive, into dir/a.perf and dir/b.perf (clock: CLOCK_MONOTONIC, the clock of each
       sample's printed start and end), with the daemons' logs; LATER_N=n: that many later
       files, 10 by default)
"""
import os, random, signal, statistics, subprocess, sys, time

N = int(sys.argv[1])
IDLE_S = float(os.environ.get("IDLE_S", "0"))
PROFILE_LATER = os.environ.get("PROFILE_LATER", "")
LATER_N = int(os.environ.get("LATER_N", "10"))
WORK = os.environ["BENCH_WORK"]
FERRY = os.environ["FERRY_BIN"]
PER_DIR = 1000


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count(root):
    n = 0
    for d in os.scandir(root):
        if d.is_dir() and d.name.startswith("d"):
            n += sum(1 for e in os.scandir(d.path) if e.is_file() and not e.name.endswith(".ferry-tmp"))
    return n


def say(*args):
    print(*args, flush=True)


a, b = os.path.join(WORK, "A"), os.path.join(WORK, "B")
t = time.monotonic()
rng = random.Random(1)
for i in range(N):
    d = os.path.join(a, f"d{i // PER_DIR:04d}")
    if i % PER_DIR == 0:
        os.makedirs(d)
    with open(os.path.join(d, f"f{i:07d}.txt"), "wb") as f:
        f.write(rng.randbytes(rng.randint(64, 1024)))
say(f"generated {N} files in {time.monotonic() - t:.0f} s")

base = ["--relay", "disabled", "--bind", "127.0.0.1:0"]


def cmd(home, *args):
    return [FERRY, "--home", os.path.join(WORK, home), *base, *args]


procs = []
for home in ("ha", "hb"):
    # The log goes to a file: a pipe nobody reads would stop the daemon once full.
    log = os.path.join(WORK, f"{home}.log")
    p = subprocess.Popen(cmd(home, "run"), stderr=open(log, "w"), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while "running" not in open(log).read():
        if time.monotonic() > deadline or p.poll() is not None:
            raise SystemExit(f"{home} did not start: {open(log).read()}")
        time.sleep(0.05)
    procs.append(p)
say("daemons: " + " ".join(f"{home}={p.pid}" for home, p in zip(("ha", "hb"), procs)))
try:
    t0 = time.monotonic()
    ticket = subprocess.run(cmd("ha", "folder", "share", a), capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(cmd("hb", "folder", "join", ticket, b), capture_output=True, check=True)
    deadline = t0 + 4 * 3600
    n, last = 0, 0.0
    while n < N:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out with {n} of {N} files on B")
        time.sleep(5)  # between counts of a million directory entries, not synchronisation
        n = count(b) if os.path.isdir(b) else 0
        if time.monotonic() - last > 60:
            last = time.monotonic()
            rss = " ".join(f"{status(p.pid, 'VmRSS'):.0f}" for p in procs)
            say(f"  {time.monotonic() - t0:.0f} s: {n} files on B, RSS {rss} MiB")
    took = time.monotonic() - t0
    say(f"million-sync\t{took:.1f}\ts\t(every file on B; counted every 5 s)")
    for side, p in zip("ab", procs):
        say(f"peak-rss-{side}\t{status(p.pid, 'VmHWM'):.0f}\tMiB")
    # Settled: both daemons used under 2% of a core over 10 s.
    settled = False
    for _ in range(180):
        before = [cpu_s(p.pid) for p in procs]
        time.sleep(10)
        used = [cpu_s(p.pid) - x for p, x in zip(procs, before)]
        if max(used) < 0.2:
            settled = True
            break
    if not settled:
        say("  (still busy after 30 minutes; RSS read anyway)")
    for side, p in zip("ab", procs):
        say(f"settled-rss-{side}\t{status(p.pid, 'VmRSS'):.0f}\tMiB")
    perfs = []
    if PROFILE_LATER:
        os.makedirs(PROFILE_LATER, exist_ok=True)
        for side, p in zip("ab", procs):
            out = os.path.join(PROFILE_LATER, f"{side}.perf")
            perfs.append(subprocess.Popen(
                ["perf", "record", "-k", "CLOCK_MONOTONIC", "-F", "499", "-g", "-p", str(p.pid), "-o", out],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1)  # perf attaching, not synchronisation
    times = []
    for i in range(LATER_N):
        rel = os.path.join(f"d{(N // PER_DIR) // 2:04d}", f"new-{i}.bin")
        t1 = time.monotonic()
        with open(os.path.join(a, rel), "wb") as f:
            f.write(os.urandom(4096))
        dest = os.path.join(b, rel)
        while not (os.path.exists(dest) and os.path.getsize(dest) == 4096):
            if time.monotonic() - t1 > 120:
                raise SystemExit(f"{rel} did not arrive in 120 s")
            time.sleep(0.002)
        times.append(time.monotonic() - t1)
        if PROFILE_LATER:
            say(f"  later file {i}: {t1:.3f} to {time.monotonic():.3f} (CLOCK_MONOTONIC), {times[-1]:.3f} s")
        time.sleep(0.3)  # spacing between samples, not synchronisation
    for perf in perfs:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    times.sort()
    say(f"new-file-median\t{statistics.median(times):.3f}\ts")
    say(f"new-file-max\t{times[-1]:.3f}\ts")
    if IDLE_S > 0:
        before = [cpu_s(p.pid) for p in procs]
        time.sleep(IDLE_S)  # the idle window measured, not synchronisation
        for side, p, x in zip("ab", procs, before):
            say(f"idle-cpu-{side}\t{cpu_s(p.pid) - x:.2f}\ts\t(over {IDLE_S:.0f} s)")
        for side, p in zip("ab", procs):
            say(f"idle-rss-{side}\t{status(p.pid, 'VmRSS'):.0f}\tMiB\t(after {IDLE_S:.0f} idle s)")
finally:
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
    if PROFILE_LATER:
        for home in ("ha", "hb"):
            log = os.path.join(WORK, f"{home}.log")
            if os.path.exists(log):
                subprocess.run(["cp", log, PROFILE_LATER], check=False)
