#!/usr/bin/env python3
"""Timing, I/O accounting and image description for the flatten benchmark.

Used by tests/bench/images.sh, tests/bench/run.sh and tests/bench/pull.sh (see there); by hand:

  measure.py describe IMAGE_DIR                 markdown table of an image's layers
  measure.py check-compression PATH plain|gzip  fail unless every layer of PATH (a
                                                docker-archive tar or an OCI layout)
                                                is stored that way
  measure.py bench --bench-dir D --flatten F --runs N --fs NAME=DIR ... [--image NAME ...]
                   [--form plain|gzip ...] [--json FILE]
                                                run the benchmark, print the markdown
  measure.py run OUTDIR -- CMD ARGS...          one measured run of CMD (time, peak RSS,
                                                /proc/PID/io), as JSON
  measure.py pull --bench-dir D --flatten F --runs N --fs NAME=DIR ... --image NAME ...
                  --registry HOST:PORT --registry-pid PID --policy FILE [--json FILE]
                  [--network TEXT --network-title TEXT] [--helper-pid PID]
                  [--trace [--trace-dev DEV]]
                                                the registry-pull benchmark of pull.sh

How one run is measured (run_once): the output dir is removed and made again (empty),
then sync(2), then the clock starts and `/usr/bin/time -f %M CMD` is spawned; waitid(
WEXITED | WNOWAIT) returns when it exits but leaves it a zombie, so the clock stops
there and /proc/PID/io can still be read; then wait4() reaps it. GNU time forks CMD and
waits for it, so the kernel has added CMD's I/O counters (and those of the children
CMD waited for: tar's gzip, the loops' tar) into time's, and %M is the peak RSS of CMD
and of the children it waited for (%U %S their CPU time). (ru_maxrss of a child spawned by python itself
would be at least python's own RSS: exec keeps the old mm's high-water mark.)
`measure.py selftest` checks all this.
"""

import argparse
import datetime
import gzip
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

MiB = 1 << 20
TAR_FLAGS = ["--numeric-owner", "--xattrs", "--xattrs-include=*"]


# ---------------------------------------------------------------- images


def oci_layers(layout, ref="latest"):
    """[(blob path, media type, size)] of the image REF of an OCI layout, bottom first."""
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    mans = [m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
    if not mans:
        if len(index["manifests"]) != 1:
            sys.exit(f"{layout}: no manifest named {ref}")
        mans = index["manifests"]
    man = json.load(open(blob(layout, mans[0]["digest"])))
    cfg = json.load(open(blob(layout, man["config"]["digest"])))
    return [(blob(layout, l["digest"]), l["mediaType"], l["size"]) for l in man["layers"]], cfg


def blob(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def docker_archive_layers(path):
    """[(member name, first 4 bytes)] of the layers of a docker-archive tar."""
    with tarfile.open(path) as t:
        manifest = json.load(t.extractfile("manifest.json"))
        if len(manifest) != 1:
            sys.exit(f"{path}: {len(manifest)} images, expected 1")
        out = []
        for name in manifest[0]["Layers"]:
            m = t.getmember(name)
            while m.issym() or m.islnk():   # docker's own layout links layers
                m = t.getmember(os.path.normpath(os.path.join(os.path.dirname(m.name), m.linkname)))
            out.append((name, t.extractfile(m).read(4)))
        return out


def kind(magic):
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "plain"


def check_compression(path, want):
    if os.path.isdir(path):
        layers = []
        for p, mt, _ in oci_layers(path)[0]:
            with open(p, "rb") as f:
                magic = f.read(4)
            labelled = {"tar": "plain", "tar+gzip": "gzip", "tar+zstd": "zstd"}.get(mt.rsplit(".", 1)[-1])
            if labelled != kind(magic):
                sys.exit(f"{path}: blob {os.path.basename(p)[:12]} is {kind(magic)} but labelled {mt}")
            layers.append((os.path.basename(p)[:12], magic))
    else:
        layers = docker_archive_layers(path)
    bad = [(n, kind(m)) for n, m in layers if kind(m) != want]
    if bad:
        sys.exit(f"{path}: layers not {want}: {bad}")
    print(f"{path}: {len(layers)} layers, all {want}", file=sys.stderr)


def tar_stats(fileobj):
    s = dict(entries=0, dirs=0, files=0, file_bytes=0, symlinks=0, hardlinks=0,
             other=0, whiteouts=0, opaque=0)
    with tarfile.open(fileobj=fileobj, mode="r|") as t:
        for m in t:
            s["entries"] += 1
            base = os.path.basename(m.name.rstrip("/"))
            if base == ".wh..wh..opq":
                s["opaque"] += 1
            elif base.startswith(".wh."):
                s["whiteouts"] += 1
            elif m.isdir():
                s["dirs"] += 1
            elif m.isreg():
                s["files"] += 1
                s["file_bytes"] += m.size
            elif m.issym():
                s["symlinks"] += 1
            elif m.islnk():
                s["hardlinks"] += 1
            else:
                s["other"] += 1
    return s


def describe(image_dir):
    plain, cfg = oci_layers(os.path.join(image_dir, "oci-plain"))
    gz, _ = oci_layers(os.path.join(image_dir, "oci-gzip"))
    diff_ids = cfg["rootfs"]["diff_ids"]
    assert [os.path.basename(p) for p, _, _ in plain] == [d.split(":")[1] for d in diff_ids], \
        "oci-plain blobs are not the uncompressed layers"
    history = [h.get("created_by", "") for h in cfg.get("history", []) if not h.get("empty_layer")]
    rows, tot = [], dict(plain=0, gz=0)
    name = os.path.basename(os.path.abspath(image_dir))
    print(f"### {name}\n")
    print("| layer | created by | tar MiB | gzip MiB | entries | dirs | files | file MiB "
          "| symlinks | hardlinks | other | whiteouts | opaque |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, ((pp, _, psize), (gp, _, gsize)) in enumerate(zip(plain, gz), 1):
        with open(pp, "rb") as f:
            s = tar_stats(f)
        by = history[i - 1] if i - 1 < len(history) else ""
        by = by.replace("tests/bench/images.sh: ", "").replace("|", "/")
        tot["plain"] += psize
        tot["gz"] += gsize
        print(f"| {i} | {by} | {psize / MiB:.1f} | {gsize / MiB:.1f} | {s['entries']} "
              f"| {s['dirs']} | {s['files']} | {s['file_bytes'] / MiB:.1f} | {s['symlinks']} "
              f"| {s['hardlinks']} | {s['other']} | {s['whiteouts']} | {s['opaque']} |")
    with open(os.path.join(image_dir, "final.tar"), "rb") as f:
        s = tar_stats(f)
    print(f"| all | | {tot['plain'] / MiB:.1f} | {tot['gz'] / MiB:.1f} | | | | | | | | | |")
    print(f"| final tree | final.tar | {os.path.getsize(os.path.join(image_dir, 'final.tar')) / MiB:.1f} "
          f"| | {s['entries']} | {s['dirs']} | {s['files']} | {s['file_bytes'] / MiB:.1f} "
          f"| {s['symlinks']} | {s['hardlinks']} | {s['other']} | | |")
    da = os.path.getsize(os.path.join(image_dir, "docker-archive.tar"))
    print(f"\ndocker-archive.tar: {da / MiB:.1f} MiB; gzip/tar ratio: {tot['gz'] / tot['plain']:.2f}\n")


# ---------------------------------------------------------------- measuring


def read_io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k.strip()] = int(v)
    return out


def rm_rf(path):
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--one-file-system", path], check=True)


def run_once(argv, outdir, log):
    """Run argv once into a fresh empty outdir (None: no output dir); its stdout and
    stderr go to the file log (None: inherited)."""
    if outdir:
        rm_rf(outdir)
        os.mkdir(outdir)
    # on tmpfs, so that time's own write of the number is no storage write
    fd, rssfile = tempfile.mkstemp(prefix="flatten-bench-rss-", dir="/dev/shm")
    os.close(fd)
    timed = ["/usr/bin/time", "-f", "%M %U %S", "-o", rssfile, *argv]
    os.sync()
    waited = wait_quiet() if QUIET else 0.0
    busy0, own0, soft0 = cpu_busy(), own_cpu(), softirq_cpu()
    with open(log or os.devnull, "wb") as lf:
        redirect = [(os.POSIX_SPAWN_DUP2, lf.fileno(), 1),
                    (os.POSIX_SPAWN_DUP2, lf.fileno(), 2)] if log else []
        t0 = time.monotonic()
        pid = os.posix_spawn(timed[0], timed, os.environ, file_actions=redirect)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        t1 = time.monotonic()
        ioc = read_io(pid)
        _, status, _ = os.wait4(pid, 0)
    others = (cpu_busy() - busy0) - (own_cpu() - own0)
    softirq = softirq_cpu() - soft0
    with open(rssfile) as f:
        rss = f.read().split()
    os.unlink(rssfile)
    if status != 0:
        tail = ""
        if log:
            with open(log, errors="replace") as f:
                tail = f.read()[-3000:]
        raise SystemExit(f"command failed ({os.waitstatus_to_exitcode(status)}): "
                         f"{' '.join(argv)}\n{tail}")
    if outdir:
        rm_rf(outdir)
    return dict(time=t1 - t0, t0=t0, t1=t1, rss_kib=int(rss[-3]), cpu=float(rss[-2]) + float(rss[-1]),
                wchar=ioc["wchar"], rchar=ioc["rchar"], write_bytes=ioc["write_bytes"], read_bytes=ioc["read_bytes"],
                cancelled=ioc["cancelled_write_bytes"], others_cpu=others, softirq=softirq, waited=waited)


def selftest():
    """Check that the I/O counters of a zombie, and of reaped children, are read."""
    d = tempfile.mkdtemp(dir="/var/tmp")
    try:
        log = os.path.join(d, "log")
        r = run_once(["dd", "if=/dev/zero", f"of={d}/a", "bs=1M", "count=8", "status=none"], None, log)
        assert r["wchar"] >= 8 * MiB, r
        r = run_once(["sh", "-c", f"dd if=/dev/zero of={d}/b bs=1M count=8 status=none"], None, log)
        assert r["wchar"] >= 8 * MiB, ("children's I/O not in the parent's", r)
        r = run_once(["true"], None, log)
        assert r["rss_kib"] < 8 * 1024, ("peak RSS of `true`", r)
        r = run_once(["sh", "-c", "python3 -c 'x = bytearray(64 << 20)'"], None, log)
        assert r["rss_kib"] > 64 * 1024, ("peak RSS of children", r)
        print("selftest: /proc/PID/io of the zombie and of reaped children, peak RSS: ok",
              file=sys.stderr)
    finally:
        shutil.rmtree(d)


def commands(args, image, form, first_fs, out):
    img = os.path.join(args.bench_dir, "images", image)
    if form == "plain":
        src, layout, z = os.path.join(img, "docker-archive.tar"), os.path.join(img, "oci-plain"), ""
    else:
        src = layout = os.path.join(img, "oci-gzip")
        z = "z"
    layers = [p for p, _, _ in oci_layers(layout)[0]]
    tar = " ".join(TAR_FLAGS)
    cmds = [
        ("floor", ["tar", *TAR_FLAGS, "-xf", os.path.join(img, "final.tar"), "-C", out], out),
        ("flatten", [args.flatten, "-q", src, out], out),
        # Without checking digests: what hashing costs (SHA-256 of every layer byte).
        ("flatten-noverify", [args.flatten, "-q", "--no-verify", src, out], out),
        *([("flatten-base", [args.flatten_base, "-q", src, out], out)] if args.flatten_base else []),
        ("umoci", ["umoci", "raw", "unpack", "--image", f"{layout}:latest", out], out),
        ("gnutar-layers", ["sh", "-c", f'o=$1; shift; for l; do tar {tar} -x{z}f "$l" -C "$o" || exit 1; done',
                           "sh", out, *layers], out),
    ]
    if first_fs:
        # Hashing the stored layers alone, as fast as OpenSSL does it: for plain layers the
        # bound of any run that checks their digests (for gzip ones the uncompressed stream
        # is hashed too, for the config's diff_ids).
        cmds.append(("sha256-layers", ["sh", "-c", 'openssl dgst -sha256 "$@" >/dev/null', "sh", *layers], None))
    if form == "gzip" and first_fs:
        for tool in ("igzip", "gzip"):
            cmds.append((f"inflate-{tool}", ["sh", "-c", f'for l; do {tool} -dc "$l" || exit 1; done >/dev/null',
                                             "sh", *layers], None))
    # BENCH_SKIP: commands left out of a quick comparison (the floor always runs).
    skip = set(os.environ.get("BENCH_SKIP", "").split(",")) - {"floor"}
    return [c for c in cmds if c[0] not in skip]


def bench(args):
    selftest()
    fss = [fs.split("=", 1) for fs in args.fs]
    results = []   # dicts: image form fs cmd runs=[...] ratios=[...]
    log = os.path.join(args.bench_dir, "last-command.log")
    t_start = time.monotonic()
    busy0, own0 = cpu_busy(), own_cpu()
    for image in args.image:
        for form in args.form:
            for fi, (fsname, fsdir) in enumerate(fss):
                out = os.path.join(fsdir, "out")
                cmds = commands(args, image, form, fi == 0, out)
                recs = {name: dict(image=image, form=form, fs=fsname, cmd=name, argv=argv,
                                   runs=[], ratios=[]) for name, argv, _ in cmds}
                label = f"{image} / {form} / {fsname}"
                print(f"[bench] {label}: warm-up", file=sys.stderr)
                for name, argv, o in cmds:   # warm-up round: page cache of the inputs
                    run_once(argv, o, log)
                for r in range(args.runs):
                    order = cmds[r % len(cmds):] + cmds[:r % len(cmds)]   # rotate the start
                    times = {}
                    for name, argv, o in order:
                        m = run_once(argv, o, log)
                        recs[name]["runs"].append(m)
                        times[name] = m["time"]
                    for name in times:
                        recs[name]["ratios"].append(times[name] / times["floor"])
                    print(f"[bench] {label}: round {r + 1}/{args.runs}: " +
                          ", ".join(f"{n} {t:.2f}s" for n, t in times.items()), file=sys.stderr)
                results.extend(recs.values())
    elapsed = time.monotonic() - t_start
    args.others_cpu = (cpu_busy() - busy0) - (own_cpu() - own0)
    md = report(args, results, elapsed)
    if args.syscalls:
        md += syscall_report(args, fss)
    print(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(elapsed=elapsed, results=results), f, indent=1)


def strace_counts(argv, outdir):
    """{syscall: calls} of one run under `strace -f -c` (threads and children included)."""
    fd, summary = tempfile.mkstemp(prefix="strace-", dir="/var/tmp")
    os.close(fd)
    try:
        run_once(["strace", "-f", "-c", "-o", summary, *argv], outdir, os.devnull)
        counts = {}
        with open(summary) as f:
            for line in f:
                tok = line.split()
                if len(tok) in (5, 6) and tok[3].isdigit() and not line.startswith("%"):
                    counts[tok[-1]] = int(tok[3])
        return counts
    finally:
        os.unlink(summary)


def syscall_report(args, fss):
    """Syscall counts of the commands for the plain form, on the last filesystem."""
    fsname, fsdir = fss[-1]
    out = os.path.join(fsdir, "out")
    lines = ["", f"## System calls (one run under `strace -f -c`, docker-archive plain form, {fsname})", ""]
    for image in args.image:
        cmds = commands(args, image, "plain", False, out)
        print(f"[bench] {image}: strace", file=sys.stderr)
        counts = {name: strace_counts(argv, o) for name, argv, o in cmds}
        # the 10 most frequent of each, and those that tell how content is copied or undone
        names = {k for k in ("copy_file_range", "sendfile", "splice", "renameat2", "renameat",
                             "linkat", "unlinkat", "fsync", "fdatasync", "mmap")
                 if any(k in c for c in counts.values())}
        for c in counts.values():
            names.update(sorted((k for k in c if k != "total"), key=lambda k: -c[k])[:10])
        order = sorted(names, key=lambda k: -counts["flatten"].get(k, 0))
        lines += [f"### {image}", "",
                  "| syscall | " + " | ".join(counts) + " |",
                  "|---|" + "---:|" * len(counts)]
        for k in order + ["total"]:
            lines.append(f"| {k} | " + " | ".join(str(c.get(k, 0)) for c in counts.values()) + " |")
        lines.append("")
    return "\n".join(lines)


QUIET = os.environ.get("BENCH_QUIET", "1") == "1"


def wait_quiet(window=0.3, limit=0.15, max_wait=60.0):
    """Wait until other processes use less than `limit` of one CPU over `window`
    seconds (a shared 2-core machine: builds and tests come and go); give up after
    max_wait. Returns the seconds waited beyond the first window."""
    t0 = time.monotonic()
    while True:
        b, o = cpu_busy(), own_cpu()
        time.sleep(window)
        others = (cpu_busy() - b) - (own_cpu() - o)
        waited = time.monotonic() - t0 - window
        if others < limit * window or waited > max_wait:
            return waited


def cpu_busy():
    """CPU seconds all CPUs spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]   # idle, iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def softirq_cpu():
    """CPU seconds all CPUs spent in softirqs since boot (/proc/stat). With tick-based
    accounting a softirq tick is charged to the task it interrupted, or to no one when
    the CPU was idle: the network stack's work (and tc's) on idle CPUs, such as those of
    a run that waits for a shaped link, shows up in "others"."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[7]) / os.sysconf("SC_CLK_TCK")


def own_cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def versions(args):
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- flatten: `{shown_path(args.flatten)}` ({first_line([args.flatten, '--version'])})" +
        (f", {args.label}" if args.label else ""),
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
        f"kernel {platform.release()}",
        f"- tools: {first_line(['tar', '--version'])}; umoci {first_line(['umoci', '--version']).split()[-1]}; "
        f"{first_line(['gzip', '--version'])}; igzip {first_line(['igzip', '--version'])}",
        "- filesystems: " + "; ".join(f"{n} = `{d}` ({fstype(d)})" for n, d in (fs.split("=", 1) for fs in args.fs)),
        f"- runs: {args.runs} timed rounds after one warm-up round; within a round the commands are "
        "interleaved (the start rotates each round); `sync` before each command, output removed after it (not timed)",
    ]


def fstype(path):
    try:
        return subprocess.run(["findmnt", "-no", "FSTYPE", "-T", path], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "?"


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shown_path(p):
    """A path inside this repository relative to it, so that reports name no machine's paths."""
    return os.path.relpath(p, REPO) if p.startswith(REPO + os.sep) else p


def report(args, results, elapsed):
    runs = [x for r in results for x in r["runs"]]
    disturbed = [x for x in runs if x["others_cpu"] > 0.1 * x["time"]]
    lines = ["# flatten benchmark", ""] + versions(args) + [
        f"- benchmark time: {elapsed / 60:.1f} min; CPU time used meanwhile by other processes "
        f"(kernel threads included, e.g. writeback): {args.others_cpu:.0f} s",
        (f"- quiet: before each command, waited until other processes used < 15% of a CPU "
         f"(waited {sum(x['waited'] for x in runs):.0f} s in all); " if QUIET else "- ") +
        f"timed runs during which other processes used CPU > 10% of the run's wall time: "
        f"{len(disturbed)} of {len(runs)}", "",
        "Times: median wall seconds (range), and the median of the per-round ratios to `floor` "
        "(GNU tar -x of the final tree into an empty dir). CPU: user + system seconds (median; "
        "threads and waited-for children included). RSS: peak (ru_maxrss, children "
        "included). I/O: /proc/PID/io of the timed runs (median), MiB; wchar = bytes passed to "
        "write(2)-like calls (to any file, pipe or /dev/null), write_bytes = bytes the process "
        "caused to be written to storage (0 on tmpfs), cancelled = written then truncated or "
        "deleted before writeback. Children (tar's gzip, the loops' tar) are included.", "",
        "| image | form | fs | command | median s | range s | × floor | CPU s | peak RSS MiB "
        "| wchar MiB | × floor | write_bytes MiB | × floor | cancelled MiB |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    floors = {(r["image"], r["form"], r["fs"]): r for r in results if r["cmd"] == "floor"}
    for r in results:
        f = floors[(r["image"], r["form"], r["fs"])]
        times = [x["time"] for x in r["runs"]]
        def m(key, rec=r):
            return med([x[key] for x in rec["runs"]])
        def ratio(a, b):
            return f"{a / b:.2f}" if a >= MiB and b >= MiB else "–"
        lines.append(
            f"| {r['image']} | {'docker-archive, plain' if r['form'] == 'plain' else 'OCI, gzip'} "
            f"| {r['fs']} | {r['cmd']} | {med(times):.2f} | {min(times):.2f}–{max(times):.2f} "
            f"| {med(r['ratios']):.2f} | {m('cpu'):.2f} | {m('rss_kib') / 1024:.0f} | {m('wchar') / MiB:.0f} "
            f"| {ratio(m('wchar'), m('wchar', f))} | {m('write_bytes') / MiB:.0f} "
            f"| {ratio(m('write_bytes'), m('write_bytes', f))} | {m('cancelled') / MiB:.0f} |")
    lines += ["", "Commands (OUT is a fresh empty directory on the filesystem of the row):", ""]
    seen = set()
    for r in results:
        key = (r["image"], r["form"], r["cmd"])
        if key in seen:
            continue
        seen.add(key)
        argv = [a if not a.startswith(args.bench_dir) else "$BENCH_DIR" + a[len(args.bench_dir):]
                for a in r["argv"]]
        argv = ["OUT" if a.endswith("/out") else shown_path(a) for a in argv]
        shown = " ".join(a if " " not in a and "$" not in a[1:] else f"'{a}'" for a in argv[:12])
        if len(argv) > 12:
            shown += f" … ({len(argv) - 12} more)"
        lines.append(f"- {r['image']} {r['form']} {r['cmd']}: `{shown}`")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- pulling from a registry


def proc_cpu(pid):
    """CPU seconds (user + system, all threads) process PID has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pull_commands(args, image, fsdir):
    """[(name, argv)] of pull.sh's commands for IMAGE on the filesystem at FSDIR. Every
    command writes into FSDIR/pull-work (made empty before the run, removed after it):
    the tree into out/, skopeo's copy into copy/. TMPDIR is FSDIR/tmp for all (where
    flatten --no-cache spools the blobs it fetches); XDG_CACHE_HOME is FSDIR/nocache (which
    must stay empty) except for flatten-cached, whose FSDIR/cache pull.sh fills first."""
    ref = f"{args.registry}/{image}:latest"
    work = os.path.join(fsdir, "pull-work")
    out, copy = os.path.join(work, "out"), os.path.join(work, "copy")
    env = ["env", f"TMPDIR={fsdir}/tmp", f"XDG_CACHE_HOME={fsdir}/nocache"]
    skopeo = ["skopeo", "--policy", args.policy, "copy", "-q", "--src-tls-verify=false",
              f"docker://{ref}", f"oci:{copy}:latest"]
    sk = " ".join(skopeo)
    layout = os.path.join(args.bench_dir, "images", image, "oci-gzip")
    cmds = [
        ("flatten-pull", env + [args.flatten, "-q", "--tls-verify=false", "--no-cache", f"docker://{ref}", out]),
        *([("flatten-pull-base", env + [args.flatten_base, "-q", "--tls-verify=false", "--no-cache",
                                        f"docker://{ref}", out])] if args.flatten_base else []),
        ("skopeo-copy", env + skopeo),
        ("copy+flatten", env + ["sh", "-c", f"{sk} && {args.flatten} -q oci:{copy}:latest {out}"]),
        ("copy+umoci", env + ["sh", "-c", f"{sk} && umoci raw unpack --image {copy}:latest {out}"]),
        ("flatten-cached", ["env", f"TMPDIR={fsdir}/tmp", f"XDG_CACHE_HOME={fsdir}/cache", args.flatten,
                            "-q", "--tls-verify=false", f"docker://{ref}", out]),
        ("flatten-oci", env + [args.flatten, "-q", f"oci:{layout}:latest", out]),
    ]
    skip = set(os.environ.get("BENCH_SKIP", "").split(",")) - {"skopeo-copy"}
    return work, [c for c in cmds if c[0] not in skip]


def registry_conns(pid, port):
    """(established, sending): the registry's TCP connections on PORT (server side, read
    from /proc/PID/net/tcp, so in the registry's network namespace), and how many of them
    have bytes in their send queue (sent and not yet acknowledged, or not yet sent): the
    blobs (or manifests) being sent at this moment."""
    est = sending = 0
    for name in ("tcp", "tcp6"):
        try:
            f = open(f"/proc/{pid}/net/{name}")
        except FileNotFoundError:
            continue
        with f:
            next(f)
            for line in f:
                x = line.split()
                if x[3] != "01" or int(x[1].rsplit(":", 1)[1], 16) != port:
                    continue
                est += 1
                if int(x[4].split(":")[0], 16) > 0:
                    sending += 1
    return est, sending


def rx_bytes(dev):
    with open(f"/sys/class/net/{dev}/statistics/rx_bytes") as f:
        return int(f.read())


def traced_run(args, argv, work, log, period=0.01):
    """One more run of ARGV (not one of the timed rounds) while a thread samples, every
    PERIOD seconds, the registry's connections and the bytes received on the host's end
    of the link (--trace-dev, if any). Returns run_once's dict with the samples."""
    import threading
    port = int(args.registry.rsplit(":", 1)[1])
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            est, sending = registry_conns(args.registry_pid, port)
            samples.append((time.monotonic(), est, sending, rx_bytes(args.trace_dev) if args.trace_dev else 0))
            time.sleep(period)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        m = run_once(argv, work, log)
    finally:
        stop.set()
        th.join()
    m["samples"] = [s for s in samples if m["t0"] - period <= s[0] <= m["t1"] + period]
    return m


def trace_summary(m, with_bytes, width=40):
    """From traced_run's samples: MiB received on the link, when the transfer ended (the
    first sample by which all but 64 KiB of the bytes had arrived; without --trace-dev,
    the last sample at which the registry still had bytes to send), the most connections
    and sending connections at once, the mean number sending while any was, and a
    timeline: the most sending at once in each of WIDTH slices of the run."""
    t0, t1, ss = m["t0"], m["t1"], m["samples"]
    if not ss:
        return None
    rx0 = ss[0][3]
    total = ss[-1][3] - rx0
    if with_bytes:
        done = next((t for t, _, _, rx in ss if rx - rx0 >= total - 65536), t1)
    else:
        done = max((t for t, _, sending, _ in ss if sending), default=None)
    busy = [s for _, _, s, _ in ss if s]
    slices = [0] * width
    for t, _, s, _ in ss:
        i = min(width - 1, max(0, int((t - t0) / (t1 - t0) * width)))
        slices[i] = max(slices[i], s)
    if with_bytes and total < 4 * 65536:   # a manifest or two: no transfer to speak of
        done = None
    # (without --trace-dev: None when no sample caught the registry sending)
    return dict(mib=total / MiB, done=None if done is None else min(max(done, t0), t1) - t0,
                conns=max(e for _, e, _, _ in ss),
                sending=max(busy, default=0), mean=statistics.mean(busy) if busy else 0.0,
                timeline="".join("." if s == 0 else str(min(s, 9)) for s in slices))


def pull_bench(args):
    selftest()
    fss = [fs.split("=", 1) for fs in args.fs]
    results, traces = [], []
    log = os.path.join(args.bench_dir, "last-command.log")
    t_start = time.monotonic()
    busy0, own0, reg0 = cpu_busy(), own_cpu(), proc_cpu(args.registry_pid)
    helper0 = sum(proc_cpu(p) for p in args.helper_pid)
    for image in args.image:
        for fsname, fsdir in fss:
            work, cmds = pull_commands(args, image, fsdir)
            for sub in ("tmp", "cache", "nocache"):
                os.makedirs(os.path.join(fsdir, sub), exist_ok=True)
            recs = {name: dict(image=image, fs=fsname, cmd=name, argv=argv, runs=[], ratios=[])
                    for name, argv in cmds}
            label = f"{image} / {fsname}"

            def one(argv, trace=False):
                r0, h0 = proc_cpu(args.registry_pid), sum(proc_cpu(p) for p in args.helper_pid)
                m = traced_run(args, argv, work, log) if trace else run_once(argv, work, log)
                m["registry_cpu"] = proc_cpu(args.registry_pid) - r0
                m["helper_cpu"] = sum(proc_cpu(p) for p in args.helper_pid) - h0
                return m
            shutil.rmtree(os.path.join(fsdir, "cache"))
            os.mkdir(os.path.join(fsdir, "cache"))
            if "flatten-cached" in recs:
                print(f"[pull] {label}: filling the cache of flatten-cached (not timed)", file=sys.stderr)
                one(dict(cmds)["flatten-cached"])
            print(f"[pull] {label}: warm-up", file=sys.stderr)
            for name, argv in cmds:
                one(argv)
            for r in range(args.runs):
                order = cmds[r % len(cmds):] + cmds[:r % len(cmds)]   # rotate the start
                times = {}
                for name, argv in order:
                    m = one(argv)
                    recs[name]["runs"].append(m)
                    times[name] = m["time"]
                for name in times:
                    recs[name]["ratios"].append(times[name] / times["skopeo-copy"])
                print(f"[pull] {label}: round {r + 1}/{args.runs}: " +
                      ", ".join(f"{n} {t:.2f}s" for n, t in times.items()), file=sys.stderr)
            results.extend(recs.values())
            if args.trace:
                print(f"[pull] {label}: one traced run of each command (not timed)", file=sys.stderr)
                for name, argv in cmds:
                    if name != "flatten-oci":
                        traces.append(dict(image=image, fs=fsname, cmd=name, run=one(argv, trace=True)))
    elapsed = time.monotonic() - t_start
    args.registry_total = proc_cpu(args.registry_pid) - reg0
    args.helper_total = sum(proc_cpu(p) for p in args.helper_pid) - helper0
    args.others_cpu = (cpu_busy() - busy0) - (own_cpu() - own0) - args.registry_total - args.helper_total
    print(pull_report(args, results, elapsed, traces))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(elapsed=elapsed, results=results, traces=traces), f, indent=1)


def pull_report(args, results, elapsed, traces=()):
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    runs = [x for r in results for x in r["runs"]]
    # disturbed: CPU used by processes other than the command, the registry and the helpers,
    # softirqs (the network stack) left out
    disturbed = [x for x in runs if x["others_cpu"] - x["registry_cpu"] - x.get("helper_cpu", 0)
                 - x.get("softirq", 0) > 0.1 * x["time"]]
    lines = [
        "# flatten benchmark: pulling from a registry " + (f"over a shaped link ({args.network_title})"
                                                          if args.network_title else "on loopback"), "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- flatten: `{shown_path(args.flatten_shown or args.flatten)}` ({first_line([args.flatten, '--version'])})" +
        (f", {args.label}" if args.label else ""),
        *([f"- flatten-pull-base: `{shown_path(args.flatten_base_shown or args.flatten_base)}`"] if args.flatten_base else []),
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
        f"kernel {platform.release()}",
        f"- tools: {first_line(['skopeo', '--version'])}; umoci {first_line(['umoci', '--version']).split()[-1]}; "
        f"registry: {first_line(['docker-registry', '--version'])}, plain HTTP on {args.registry}, "
        f"storage in `{args.registry_storage}` ({fstype(args.registry_storage)})",
        *([f"- network: {args.network}"] if args.network else []),
        "- filesystems: " + "; ".join(f"{n} = `{d}` ({fstype(d)})" for n, d in (fs.split("=", 1) for fs in args.fs)),
        f"- runs: {args.runs} timed rounds after one warm-up round; within a round the commands are "
        "interleaved (the start rotates each round); `sync` before each command, its output (tree and "
        "copy) removed after it (not timed)",
        f"- benchmark time: {elapsed / 60:.1f} min; CPU time used meanwhile by the registry: "
        f"{args.registry_total:.0f} s, " +
        (f"by the delay line: {args.helper_total:.0f} s, " if args.helper_pid else "") +
        f"by other processes (kernel threads included): {args.others_cpu:.0f} s",
        (f"- quiet: before each command, waited until other processes used < 15% of a CPU "
         f"(waited {sum(x['waited'] for x in runs):.0f} s in all); " if QUIET else "- ") +
        f"timed runs during which processes other than the command"
        f"{', the registry and the delay line' if args.helper_pid else ' and the registry'} used CPU "
        f"> 10% of the run's wall time, softirqs left out: {len(disturbed)} of {len(runs)} "
        f"(softirqs, i.e. the network stack and the shaping, on CPUs that were otherwise idle or "
        f"running others, median per run: {med([x.get('softirq', 0) for x in runs]):.2f} s)", "",
        "Times: median wall seconds (range), and the median of the per-round ratios to "
        "`skopeo-copy` (the copy alone, no tree written). CPU: user + system seconds of the "
        "command (median; threads and children included); registry CPU: what the registry "
        "process used meanwhile (median). RSS: peak (ru_maxrss, children included: for the "
        "copy+ rows the larger of skopeo's and the unpacker's). wchar = bytes passed to "
        "write(2)-like calls, write_bytes = bytes written to storage (0 on tmpfs); MiB, median.", "",
        "| image | fs | command | median s | range s | × skopeo-copy | CPU s | registry CPU s "
        "| peak RSS MiB | wchar MiB | write_bytes MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        times = [x["time"] for x in r["runs"]]
        def m(key, rec=r):
            return med([x[key] for x in rec["runs"]])
        lines.append(
            f"| {r['image']} | {r['fs']} | {r['cmd']} | {med(times):.2f} | {min(times):.2f}–{max(times):.2f} "
            f"| {med(r['ratios']):.2f} | {m('cpu'):.2f} | {m('registry_cpu'):.2f} | {m('rss_kib') / 1024:.0f} "
            f"| {m('wchar') / MiB:.0f} | {m('write_bytes') / MiB:.0f} |")
    lines += ["", "## Goal: the direct pull is faster than the copy alone", ""]
    for r in results:
        if r["cmd"] == "flatten-pull":
            q = med(r["ratios"])
            lines.append(f"- {r['image']} / {r['fs']}: flatten-pull / skopeo-copy = {q:.2f} "
                         f"(median of per-round ratios) < 1: **{'met' if q < 1 else 'not met'}**")
    lines += ["", "Commands (FS is the filesystem dir of the row; OUT = FS/pull-work/out and "
              "COPYDIR = FS/pull-work/copy are made by the command and removed after it; "
              "REGISTRY = the registry's HOST:PORT):", ""]
    seen = set()
    for r in results:
        if r["cmd"] in seen:
            continue
        seen.add(r["cmd"])
        fsdir = dict(fs.split("=", 1) for fs in args.fs)[r["fs"]]
        argv = r["argv"]
        shown = " ".join(argv[:-1] + [f"'{argv[-1]}'"]) if argv[-2:-1] == ["-c"] else " ".join(argv)
        for a, b in ((os.path.join(fsdir, "pull-work", "out"), "OUT"),
                     (os.path.join(fsdir, "pull-work", "copy"), "COPYDIR"), (fsdir, "FS"),
                     *([(args.flatten_base, "$FLATTEN_BASE")] if args.flatten_base else []), (args.flatten, "$FLATTEN"),
                     (args.registry, "REGISTRY"), (args.bench_dir, "$BENCH_DIR"), (r["image"], "IMG")):
            shown = shown.replace(a, b)
        lines.append(f"- {r['cmd']}: `{shown}`")
    if traces:
        with_bytes = bool(args.trace_dev)
        lines += ["", "## Transfer trace", "",
                  "One more run of each command after the timed rounds (not timed with them; a "
                  "thread of measure.py sampled every 10 ms meanwhile). " +
                  (f"MiB: received on the host's end of the link ({args.trace_dev}); last byte: when all "
                   "but 64 KiB of them had arrived, from the command's start; " if with_bytes else
                   "last byte: the last sample at which the registry still had bytes to send "
                   "(unacknowledged), from the command's start; ") +
                  "after: wall time minus that (what the command did once the transfer was over; – "
                  "when no transfer to speak of was seen). "
                  "Connections: the registry's established TCP connections, at most; sending: how "
                  "many had bytes in their send queue at once (blobs being sent), at most, and on "
                  "average over the samples where any was. Timeline: the most sending at once in "
                  "each 1/40 of the run (`.` = none).", "",
                  "| image | fs | command | wall s | " + ("MiB | " if with_bytes else "") +
                  "last byte s | after s | connections | sending max | sending mean | timeline |",
                  "|---|---|---|---:|" + ("---:|" if with_bytes else "") + "---:|---:|---:|---:|---:|---|"]
        for tr in traces:
            t = trace_summary(tr["run"], with_bytes)
            if t is None:
                continue
            wall = tr["run"]["time"]
            lines.append(f"| {tr['image']} | {tr['fs']} | {tr['cmd']} | {wall:.2f} | " +
                         (f"{t['mib']:.1f} | " if with_bytes else "") +
                         (f"{t['done']:.2f} | {wall - t['done']:.2f} | " if t["done"] is not None else "– | – | ") +
                         f"{t['conns']} | {t['sending']} "
                         f"| {t['mean']:.1f} | `{t['timeline']}` |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("describe")
    d.add_argument("image_dir")
    c = sub.add_parser("check-compression")
    c.add_argument("path")
    c.add_argument("want", choices=["plain", "gzip"])
    b = sub.add_parser("bench")
    b.add_argument("--bench-dir", required=True)
    b.add_argument("--flatten", required=True)
    b.add_argument("--label", default="", help="what the flatten binary is")
    b.add_argument("--flatten-base", help="another flatten binary to time beside it (flatten-base)")
    b.add_argument("--runs", type=int, default=5)
    b.add_argument("--fs", action="append", required=True, help="NAME=DIR")
    b.add_argument("--image", action="append")
    b.add_argument("--form", action="append", choices=["plain", "gzip"])
    b.add_argument("--json")
    b.add_argument("--syscalls", action="store_true", help="add strace -c counts")
    pl = sub.add_parser("pull")
    pl.add_argument("--bench-dir", required=True)
    pl.add_argument("--flatten", required=True)
    pl.add_argument("--flatten-shown", default="", help="what to call the flatten binary in the report")
    pl.add_argument("--label", default="", help="what the flatten binary is")
    pl.add_argument("--flatten-base", help="another flatten binary to time beside it (flatten-pull-base)")
    pl.add_argument("--flatten-base-shown", default="")
    pl.add_argument("--runs", type=int, default=5)
    pl.add_argument("--fs", action="append", required=True, help="NAME=DIR")
    pl.add_argument("--image", action="append", required=True)
    pl.add_argument("--registry", required=True, help="HOST:PORT of a plain-HTTP registry holding IMAGE:latest")
    pl.add_argument("--registry-pid", type=int, required=True)
    pl.add_argument("--registry-storage", default="?")
    pl.add_argument("--policy", required=True, help="skopeo's policy.json")
    pl.add_argument("--network", default="", help="how the registry is reached (markdown, for the report)")
    pl.add_argument("--network-title", default="", help="the same in a few words, for the title")
    pl.add_argument("--helper-pid", type=int, action="append", default=[],
                    help="a process that serves the link (pull.sh's delay line): its CPU is reported apart")
    pl.add_argument("--trace", action="store_true", help="one more, sampled, run of each command")
    pl.add_argument("--trace-dev", default="", help="the host's end of the link, whose received bytes --trace samples")
    pl.add_argument("--json")
    r = sub.add_parser("run")
    r.add_argument("outdir")
    r.add_argument("argv", nargs="+")
    sub.add_parser("selftest")
    args = p.parse_args()
    if args.what == "describe":
        describe(args.image_dir)
    elif args.what == "check-compression":
        check_compression(args.path, args.want)
    elif args.what == "bench":
        args.image = args.image or ["debian", "churn"]
        args.form = args.form or ["plain", "gzip"]
        args.bench_dir = os.path.abspath(args.bench_dir)
        bench(args)
    elif args.what == "pull":
        args.bench_dir = os.path.abspath(args.bench_dir)
        pull_bench(args)
    elif args.what == "run":
        print(json.dumps(run_once(args.argv, args.outdir, None)))
    elif args.what == "selftest":
        selftest()


if __name__ == "__main__":
    main()
