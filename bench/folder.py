#!/usr/bin/env python3
"""Folder sync, Ferry next to Syncthing, same data, same run.

Each run starts a fresh pair of peers per tool (two `ferry run` daemons, or two Syncthing
instances with discovery, relays, NAT traversal, usage reporting and upgrades off, devices
introduced by explicit 127.0.0.1 addresses), alternating Ferry and Syncthing. Workloads:

  latency   a new 4 KiB file saved on A until complete on B (Syncthing: 1 s watcher delay, and
            its default 10 s delay)
  small     DATA/small (10,000 files, 1-9 KiB) copied into A until all are complete on B
  idle      RSS of each daemon a few seconds after `small` settled, then both daemons' CPU
            seconds over IDLE_S idle seconds (300 by default; first run only)
  big       DATA/big/big.bin (1 GiB) copied into A until complete on B
  edit      1 MiB overwritten in the middle of that file: time until B has the new content, and
            bytes on the loopback interface meanwhile
  disk      a folder of one 100 MiB file (64 MiB with --quick) and 1,000 small files, then four
            1 MiB edits of the large file: each tool's own disk use on A and on B (its home, and
            its state inside the folder; Ferry's trash left out), as a share of the folder's size.
            A file counted once however many names it has, and not at all if it is one of the
            folder's own files.
  many      DATA/many (100,000 files of 1-4 KiB in 1,000 directories; 2,000 with --quick) copied
            into A until all are complete on B, on a fresh pair; each daemon's peak RSS; then
            latency of a new 4 KiB file in that folder, and idle RSS and CPU as above. Once per
            tool. (Ferry's idle window holds one of its five-minutely full passes; Syncthing's
            rescan interval is set to an hour.)

Meant to run inside a private network namespace with only loopback (bench/folder.sh does).
usage: bench/folder.py DATA OUT.tsv [--quick]     (env: RUNS=n, IDLE_S=s,
       ONLY=latency,small,big,disk,many, FERRY_ONLY=1 to leave Syncthing out while debugging)
"""
import hashlib, os, shutil, signal, subprocess, sys, tempfile, time, urllib.request

DATA, OUT = sys.argv[1], sys.argv[2]
QUICK = "--quick" in sys.argv
RUNS = int(os.environ.get("RUNS", "1" if QUICK else "3"))
LAT_N = 3 if QUICK else 10
IDLE_S = float(os.environ.get("IDLE_S", "3" if QUICK else "300"))
target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/ferry-target"))
FERRY = os.environ.get("FERRY_BIN", os.path.join(target, "release", "ferry"))
SYNCTHING = shutil.which("syncthing")


def lo_bytes():
    with open("/sys/class/net/lo/statistics/rx_bytes") as f:
        return int(f.read())


def tree(pid):
    """pid and all its descendants (Syncthing runs a monitor process and the real one)."""
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out.extend(tree(int(child)))
    except OSError:
        pass
    return out


def rss_kib(pid, field="VmRSS"):
    """Memory of pid and its descendants."""
    return sum(rss_one(p, field) for p in tree(pid))


def rss_one(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    """CPU seconds (user and system) of pid and its descendants so far."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def wait_until(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {what}")
        time.sleep(0.002)


def complete(src_root, dst_root, rels):
    """A check that is true once every file in rels is at dst with its source size. Files
    found complete are not looked at again (a 100,000-file wait would otherwise stat every
    file each time and take a core from the tools it measures)."""
    sizes = {rel: os.path.getsize(os.path.join(src_root, rel)) for rel in rels}
    pending = list(sizes)

    def check():
        nonlocal pending
        for i, rel in enumerate(pending):
            try:
                done = os.path.getsize(os.path.join(dst_root, rel)) == sizes[rel]
            except OSError:
                done = False
            if not done:
                pending = pending[i:]
                return False
        pending = []
        return True

    return check


def digest(path):
    h = hashlib.blake2b()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class FerryPair:
    name = "ferry"

    def __init__(self, work):
        self.work = work
        self.base = ["--relay", "disabled", "--bind", "127.0.0.1:0"]
        self.procs = []
        for home in ("ha", "hb"):
            # The log goes to a file: a pipe nobody reads would stop the daemon once full.
            log = os.path.join(work, f"{home}.log")
            p = subprocess.Popen(self.cmd(home, "run"), stderr=open(log, "w"), stdout=subprocess.DEVNULL)
            wait_until(f"ferry {home} starts", lambda: p.poll() is not None or "running" in open(log).read(), 60)
            if p.poll() is not None:
                raise SystemExit(f"ferry {home} did not start: {open(log).read()}")
            self.procs.append(p)
        self.a, self.b = os.path.join(work, "A"), os.path.join(work, "B")
        os.makedirs(self.a)
        ticket = subprocess.run(self.cmd("ha", "folder", "share", self.a), capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run(self.cmd("hb", "folder", "join", ticket, self.b), capture_output=True, check=True)

    def cmd(self, home, *args):
        return [FERRY, "--home", os.path.join(self.work, home), *self.base, *args]

    # For the disk workload: each side's home, and its state inside the folder.
    homes = ("ha", "hb")
    state, skip = ".ferry", ".ferry/trash"

    def settle(self):
        # A full pass now (it also runs every five minutes): versions no record names go.
        for home, path in zip(self.homes, (self.a, self.b)):
            subprocess.run(self.cmd(home, "folder", "rescan", path), capture_output=True, check=True)

    def pids(self):
        return [p.pid for p in self.procs]

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            p.wait(timeout=30)


ST_CONFIG = """<configuration version="36">
  <folder id="bench" label="bench" path="{path}" type="sendreceive" rescanIntervalS="3600"
          fsWatcherEnabled="true" fsWatcherDelayS="{delay}" ignorePerms="false" autoNormalize="true">
    <device id="{a}"></device>
    <device id="{b}"></device>
  </folder>
  <device id="{a}" name="a" compression="metadata"><address>tcp://127.0.0.1:{port_a}</address></device>
  <device id="{b}" name="b" compression="metadata"><address>tcp://127.0.0.1:{port_b}</address></device>
  <gui enabled="true" tls="false"><address>127.0.0.1:{gui}</address><apikey>bench</apikey></gui>
  <options>
    <listenAddress>tcp://127.0.0.1:{port}</listenAddress>
    <globalAnnounceEnabled>false</globalAnnounceEnabled>
    <localAnnounceEnabled>false</localAnnounceEnabled>
    <relaysEnabled>false</relaysEnabled>
    <natEnabled>false</natEnabled>
    <urAccepted>-1</urAccepted>
    <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
    <crashReportingEnabled>false</crashReportingEnabled>
    <startBrowser>false</startBrowser>
  </options>
</configuration>
"""


class SyncthingPair:
    def __init__(self, work, delay):
        self.name = f"syncthing-{delay}s"
        self.work = work
        homes = [os.path.join(work, h) for h in ("sa", "sb")]
        ids = []
        for h in homes:
            out = subprocess.run([SYNCTHING, "generate", f"--home={h}", "--no-default-folder"], capture_output=True, text=True, check=True)
            ids.append([l.split(":", 1)[1].strip() for l in (out.stdout + out.stderr).splitlines() if "Device ID:" in l][0])
        self.a, self.b = os.path.join(work, "A"), os.path.join(work, "B")
        env = dict(os.environ, STNOUPGRADE="1", STNODEFAULTFOLDER="1")
        self.procs = []
        self.guis = []
        for i, (h, path) in enumerate(zip(homes, (self.a, self.b))):
            os.makedirs(os.path.join(path, ".stfolder"))
            gui = 28384 + i
            with open(os.path.join(h, "config.xml"), "w") as f:
                f.write(ST_CONFIG.format(path=path, delay=delay, a=ids[0], b=ids[1], port_a=22101, port_b=22102, port=22101 + i, gui=gui))
            self.guis.append(gui)
            log = open(os.path.join(work, f"st{i}.log"), "w")
            self.procs.append(subprocess.Popen([SYNCTHING, "serve", f"--home={h}", "--no-browser", "--no-restart", "--no-upgrade"], stdout=log, stderr=subprocess.STDOUT, env=env))
        # Ready when each sees the other connected.
        wait_until("syncthing peers connect", lambda: all(self.connected(g) for g in self.guis), 60)

    homes = ("sa", "sb")
    state, skip = ".stfolder", None

    def settle(self):
        pass

    def connected(self, gui):
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{gui}/rest/system/connections", headers={"X-API-Key": "bench"})
            body = urllib.request.urlopen(req, timeout=2).read().decode()
            return '"connected": true' in body or '"connected":true' in body
        except OSError:
            return False

    def pids(self):
        return [p.pid for p in self.procs]

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=30)


results = []


def record(workload, tool, value, unit):
    results.append((workload, tool, value, unit))
    print(f"{workload}\t{tool}\t{value:.3f}\t{unit}", flush=True)


def latency(pair, n, under=""):
    payload = os.urandom(4096)
    times = []
    for i in range(n):
        name = os.path.join(under, f"lat-{i:03}.bin")
        t0 = time.monotonic()
        with open(os.path.join(pair.a, name), "wb") as f:
            f.write(payload)
        dest = os.path.join(pair.b, name)
        wait_until(f"{pair.name}: {name} arrives", lambda: os.path.exists(dest) and os.path.getsize(dest) == 4096, 60)
        times.append(time.monotonic() - t0)
        time.sleep(0.3)  # spacing between samples, not synchronisation
    return times


def copy_in(pair, name, what, timeout):
    """Copies DATA/name into A; the seconds until every file of it is complete on B."""
    src = os.path.join(DATA, name)
    rels = [os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs]
    t0 = time.monotonic()
    shutil.copytree(src, os.path.join(pair.a, name))
    wait_until(f"{pair.name}: {what} arrive", complete(os.path.join(pair.a, name), os.path.join(pair.b, name), rels), timeout)
    return time.monotonic() - t0


def small_files(pair):
    return copy_in(pair, "small", "small files", 600)


def big_file(pair):
    src = os.path.join(DATA, "big", "big.bin")
    t0 = time.monotonic()
    shutil.copyfile(src, os.path.join(pair.a, "big.bin"))
    wait_until(f"{pair.name}: big file arrives", complete(pair.a, pair.b, ["big.bin"]), 900)
    took = time.monotonic() - t0
    assert digest(os.path.join(pair.b, "big.bin")) == digest(src), "big file differs"
    return took


def mid_edit(pair):
    path = os.path.join(pair.a, "big.bin")
    size = os.path.getsize(path)
    patch = os.urandom(1 << 20)
    before = lo_bytes()
    t0 = time.monotonic()
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(patch)
    dest = os.path.join(pair.b, "big.bin")

    def arrived():
        try:
            with open(dest, "rb") as f:
                f.seek(size // 2)
                return f.read(len(patch)) == patch and os.path.getsize(dest) == size
        except OSError:
            return False

    wait_until(f"{pair.name}: edit arrives", arrived, 900)
    took = time.monotonic() - t0
    wire = lo_bytes() - before
    assert digest(dest) == digest(path), "edited file differs"
    return took, wire


def own_disk_use(home, folder, state, skip):
    """Bytes a tool itself holds for `folder`: see the module docs (workload `disk`)."""
    def files(root, leave_out=None):
        for d, dirs, fs in os.walk(root):
            if leave_out:
                dirs[:] = [x for x in dirs if os.path.join(d, x) != leave_out]
            for f in fs:
                try:
                    yield os.lstat(os.path.join(d, f))
                except OSError:
                    pass
    users = {(m.st_dev, m.st_ino) for m in files(folder, os.path.join(folder, state))}
    seen, total = set(), 0
    own = list(files(home)) + list(files(os.path.join(folder, state), skip and os.path.join(folder, skip)))
    for m in own:
        key = (m.st_dev, m.st_ino)
        if key not in users and key not in seen:
            seen.add(key)
            total += m.st_blocks * 512
    return total


def disk(pair):
    root_a, root_b = os.path.join(pair.a, "disk"), os.path.join(pair.b, "disk")
    os.makedirs(root_a)
    big = os.path.join(root_a, "big.bin")
    with open(os.path.join(DATA, "big", "big.bin"), "rb") as src, open(big, "wb") as dst:
        dst.write(src.read(100 << 20))
    small = os.path.join(DATA, "small")
    rels = sorted(os.path.relpath(os.path.join(d, f), small) for d, _, fs in os.walk(small) for f in fs)[:1000]
    for rel in rels:
        os.makedirs(os.path.join(root_a, "small", os.path.dirname(rel)), exist_ok=True)
        shutil.copyfile(os.path.join(small, rel), os.path.join(root_a, "small", rel))
    rels = ["big.bin"] + [os.path.join("small", r) for r in rels]
    wait_until(f"{pair.name}: disk folder arrives", complete(root_a, root_b, rels), 900)
    size = os.path.getsize(big)
    for i in range(4):
        patch = os.urandom(1 << 20)
        at = (2 * i + 1) * size // 9
        with open(big, "r+b") as f:
            f.seek(at)
            f.write(patch)

        def arrived():
            try:
                with open(os.path.join(root_b, "big.bin"), "rb") as f:
                    f.seek(at)
                    return f.read(len(patch)) == patch
            except OSError:
                return False

        wait_until(f"{pair.name}: edit {i + 1} arrives", arrived, 900)
    folder_bytes = sum(os.path.getsize(os.path.join(root_a, r)) for r in rels)
    pair.settle()
    sides = list(zip(pair.homes, (pair.a, pair.b)))
    # Settled when two readings 2 s apart agree (a full pass takes a moment to start).
    last = None
    for _ in range(30):
        used = [own_disk_use(os.path.join(pair.work, h), p, pair.state, pair.skip) for h, p in sides]
        if used == last:
            break
        last = used
        time.sleep(2)
    for side, u in zip("ab", used):
        record(f"disk-{side}", pair.name, 100 * u / folder_bytes, "% of folder")


def run_pair(make, workloads):
    work = tempfile.mkdtemp(dir=os.environ.get("BENCH_WORK"))
    pair = make(work)
    try:
        for w in workloads:
            w(pair)
    finally:
        pair.stop()
        shutil.rmtree(work, ignore_errors=True)


def lat_workload(pair):
    for t in latency(pair, LAT_N if pair.name != "syncthing-10s" else max(2, LAT_N // 3)):
        record(f"latency-4k", pair.name, t, "s")


def idle(pair, what):
    time.sleep(5)  # let both peers go idle before reading their memory
    record(f"idle-rss{what}", pair.name, max(rss_kib(p) for p in pair.pids()) / 1024, "MiB")
    before = sum(cpu_s(p) for p in pair.pids())
    time.sleep(IDLE_S)  # the measurement itself: time spent idle
    record(f"idle-cpu{what}", pair.name, sum(cpu_s(p) for p in pair.pids()) - before, "CPU s")


first_run = True


def small_workload(pair):
    record("small-10k", pair.name, small_files(pair), "s")
    if first_run:
        idle(pair, "")
    else:
        time.sleep(5)
        record("idle-rss", pair.name, max(rss_kib(p) for p in pair.pids()) / 1024, "MiB")


def many_workload(pair):
    record("many-100k", pair.name, copy_in(pair, "many", "100,000 files", 7200), "s")
    for side, p in zip("ab", pair.pids()):
        record(f"many-peak-rss-{side}", pair.name, rss_kib(p, "VmHWM") / 1024, "MiB")
    dirs = sorted(os.listdir(os.path.join(DATA, "many")))
    middle = dirs[len(dirs) // 2]
    for t in latency(pair, LAT_N, os.path.join("many", middle)):
        record("many-latency-4k", pair.name, t, "s")
    idle(pair, "-many")


def big_workload(pair):
    record("big-1g", pair.name, big_file(pair), "s")
    record("peak-rss", pair.name, max(rss_kib(p, "VmHWM") for p in pair.pids()) / 1024, "MiB")
    took, wire = mid_edit(pair)
    record("edit-1m", pair.name, took, "s")
    record("edit-1m-wire", pair.name, wire / (1 << 20), "MiB")


# ONLY=big (or latency, small, disk; comma-separated) runs a subset while working on one of them.
ONLY = set(filter(None, os.environ.get("ONLY", "").split(",")))
FERRY_ONLY = bool(os.environ.get("FERRY_ONLY"))
chosen = [w for n, w in (("latency", lat_workload), ("small", small_workload), ("big", big_workload))
          if not ONLY or n in ONLY]
makers = [FerryPair] if FERRY_ONLY else [FerryPair, lambda w: SyncthingPair(w, 1)]
for run in range(RUNS):
    first_run = run == 0
    for make in makers:
        if chosen:
            run_pair(make, chosen)
# A folder of 100,000 files, once per tool on fresh peers.
if not ONLY or "many" in ONLY:
    for make in makers:
        run_pair(make, [many_workload])
# Disk use is measured once, on fresh peers holding only that folder.
if not ONLY or "disk" in ONLY:
    for make in makers:
        run_pair(make, [disk])
if lat_workload in chosen and not FERRY_ONLY:
    run_pair(lambda w: SyncthingPair(w, 10), [lat_workload])

with open(OUT, "w") as f:
    for r in results:
        f.write("\t".join(str(x) for x in r) + "\n")

# Summary: median per workload and tool, and Ferry's ratio to Syncthing (1 s watcher delay).
import statistics
from collections import defaultdict

by = defaultdict(list)
for w, t, v, u in results:
    by[(w, t)].append(v)
units = {w: u for w, _, _, u in results}
print("\nworkload\tferry\tsyncthing-1s\tsyncthing-10s\tratio")
for w in dict.fromkeys(r[0] for r in results):
    med = {t: statistics.median(by[(w, t)]) for t in ("ferry", "syncthing-1s", "syncthing-10s") if by[(w, t)]}
    cells = [f"{med[t]:.3f}" if t in med else "-" for t in ("ferry", "syncthing-1s", "syncthing-10s")]
    ratio = f"{med['ferry'] / med['syncthing-1s']:.2f}x" if "ferry" in med and med.get("syncthing-1s") else "-"
    print(f"{w} ({units[w]})\t" + "\t".join(cells) + f"\t{ratio}")
    if w in ("latency-4k", "many-latency-4k"):
        for t, vs in ((t, sorted(by[(w, t)])) for t in ("ferry", "syncthing-1s", "syncthing-10s") if by[(w, t)]):
            print(f"  {t} p95 {vs[min(len(vs) - 1, round(0.95 * (len(vs) - 1)))]:.3f} s over {len(vs)} samples")
