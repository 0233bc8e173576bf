#!/usr/bin/python3
"""Where a run's threads spend their time: runs a command and samples
/proc/PID/task/*/schedstat every ~2 ms.

    python3 tests/bench/threads.py target/release/flatten -q IMAGE OUT

Prints, per thread, when it was first and last seen, its run time and its run-queue
wait (runnable but not running: time lost to other threads on too few cores), then a
timeline in 25 ms columns: R is the share of the column the thread ran, W the share
it waited to run (' ' < 5 %, '.' < 35 %, 'o' < 70 %, '#' above). A thread that is
neither running nor waiting is blocked (on a channel, a lock, the disk).
Used for docs/performance.md, "Small files, symlinks and directory times off the
reader".
"""
import collections
import os
import subprocess
import sys
import time

COLUMN = 0.025


def sample(pid):
    snap = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return snap
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run, wait, _ = map(int, f.read().split())
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except (OSError, ValueError):
            continue
        snap[tid] = (name, run, wait)
    return snap


def mark(seconds):
    share = seconds / COLUMN
    return " " if share < 0.05 else "." if share < 0.35 else "o" if share < 0.7 else "#"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    p = subprocess.Popen(sys.argv[1:])
    t0 = time.monotonic()
    samples = []
    while p.poll() is None:
        samples.append((time.monotonic() - t0, sample(p.pid)))
        time.sleep(0.002)
    wall = time.monotonic() - t0
    first, last = {}, {}
    for t, snap in samples:
        for tid, v in snap.items():
            first.setdefault(tid, t)
            last[tid] = (t, v)
    print(f"wall {wall:.3f} s")
    order = sorted(last, key=lambda tid: first[tid])
    for tid in order:
        t, (name, run, wait) = last[tid]
        print(f"{tid:>8} {name:16} {first[tid]:.3f}-{t:.3f} s  run {run / 1e9:.3f} s"
              f"  run-queue wait {wait / 1e9:.3f} s")
    columns = int(wall / COLUMN) + 1
    ran = collections.defaultdict(lambda: [0.0] * columns)
    waited = collections.defaultdict(lambda: [0.0] * columns)
    prev = {}
    for t, snap in samples:
        c = min(columns - 1, int(t / COLUMN))
        for tid, (_, run, wait) in snap.items():
            r0, w0 = prev.get(tid, (0, 0))
            ran[tid][c] += (run - r0) / 1e9
            waited[tid][c] += (wait - w0) / 1e9
            prev[tid] = (run, wait)
    for tid in order:
        name, run, _ = last[tid][1]
        if run < 10_000_000:   # under 10 ms: not worth a line
            continue
        print(f"{name[:12]:12} R " + "".join(mark(x) for x in ran[tid]))
        print(f"{'':12} W " + "".join(mark(x) for x in waited[tid]))
    sys.exit(p.returncode)


if __name__ == "__main__":
    main()
