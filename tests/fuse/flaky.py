#!/usr/bin/python3
"""flaky.py: a read-only FUSE filesystem whose files change between reads.

It serves one or more regular files copied from a source directory (read with
pread from the source at each request, so nothing is cached here) and answers
the bytes of chosen byte ranges ("flaky ranges") TRUE or ALTERED depending on
how many times each byte has been read before:

  true           always true (a control: the mount adds nothing but FUSE)
  altered        always altered
  first-true     true on the first read that touches a byte, altered on every
                 later read of it
  first-altered  altered on the first read, true on every later read
  alternate      true, altered, true, ... (by the byte's own read count)
  alternate-altered  altered, true, altered, ...

Reads are counted per byte, not per request: a request that covers bytes read
before and bytes never read gets the right answer for each. Bytes outside the
flaky ranges are always true. ALTERED means every byte xor 0xff, or, with a
payload, the payload's bytes (the payload is the replacement for the flaky
ranges laid end to end, in the order given, so it must be as long as their sum).

Kernel caching is off (direct_io on every open and as a mount option; zero
attr/entry/negative timeouts), so each read(2) by a client reaches this
process and the page cache cannot hide a second read.

Usage (run with Debian's /usr/bin/python3 and python3-fusepy, as root):

  flaky.py [options] SOURCE_DIR MOUNTPOINT

  --file NAME           serve SOURCE_DIR/NAME (repeatable; default: every
                        regular file directly in SOURCE_DIR)
  --range NAME:START:END[:MODE]
                        a flaky range of file NAME, bytes START..END (END
                        excluded), with its own mode (default: --mode)
  --mode MODE           the mode of ranges that name none (default first-true)
  --payload PATH        ALTERED bytes come from PATH instead of xor 0xff
  --config JSON_FILE    the same settings as a JSON object:
                        {"files": [...], "mode": "...", "payload": "...",
                         "log": "...", "ranges": [{"file": "a.tar",
                         "start": 0, "end": 10, "mode": "first-true"}]}
                        (command-line ranges are added after the file's)
  --log PATH            append one line per request that touches a flaky range:
                        "read NAME OFFSET SIZE pid=TID t=SECONDS true=N
                        altered=N" (t counts from the start)
  --background          daemonize once mounted (the command returns when the
                        mount is ready); default is to stay in the foreground
                        and print "flaky: ready MOUNTPOINT" on stdout once the
                        kernel has initialised the mount

Stop it with `fusermount -u MOUNTPOINT` (or `umount -l MOUNTPOINT`), or
SIGINT/SIGTERM, which unmounts.
"""

import argparse
import errno
import json
import os
import stat
import sys
import threading
import time

try:
    import fusepy as fuse  # Debian's python3-fusepy
except ImportError:  # fusepy from PyPI
    import fuse

MODES = ("true", "altered", "first-true", "first-altered", "alternate", "alternate-altered")
XOR = bytes(b ^ 0xFF for b in range(256))


def altered_on(mode, count):
    """Whether the read of a byte already read `count` times is answered altered."""
    if mode == "true":
        return False
    if mode == "altered":
        return True
    if mode == "first-true":
        return count >= 1
    if mode == "first-altered":
        return count == 0
    if mode == "alternate":
        return count % 2 == 1
    if mode == "alternate-altered":
        return count % 2 == 0
    raise ValueError(mode)


class Flaky:
    """One flaky range: per-byte read counts kept as sorted segments [start, end, count]."""

    def __init__(self, start, end, mode, payload, payload_at):
        if not 0 <= start < end:
            raise ValueError("bad range %d..%d" % (start, end))
        if mode not in MODES:
            raise ValueError("unknown mode %r (one of %s)" % (mode, ", ".join(MODES)))
        self.start, self.end, self.mode = start, end, mode
        self.payload, self.payload_at = payload, payload_at
        self.segs = [[start, end, 0]]

    def apply(self, off, data):
        """Alters, in the bytearray `data` holding file bytes from `off`, what this read
        must see altered; counts the read. Returns (true bytes, altered bytes)."""
        a, b = max(off, self.start), min(off + len(data), self.end)
        if a >= b:
            return 0, 0
        good = bad = 0
        out = []
        for s, e, c in self.segs:
            if e <= a or s >= b:
                out.append([s, e, c])
                continue
            if s < a:
                out.append([s, a, c])
                s = a
            tail = None
            if e > b:
                tail = [b, e, c]
                e = b
            if altered_on(self.mode, c):
                i, j = s - off, e - off
                if self.payload is None:
                    data[i:j] = bytes(data[i:j]).translate(XOR)
                else:
                    p = self.payload_at + (s - self.start)
                    data[i:j] = self.payload[p:p + (e - s)]
                bad += e - s
            else:
                good += e - s
            out.append([s, e, c + 1])
            if tail:
                out.append(tail)
        merged = []
        for seg in out:
            if merged and merged[-1][1] == seg[0] and merged[-1][2] == seg[2]:
                merged[-1][1] = seg[1]
            else:
                merged.append(seg)
        self.segs = merged
        return good, bad


class FlakyFS(fuse.Operations):
    use_ns = True

    def __init__(self, source, names, ranges, log, mountpoint):
        self.files = {}
        for name in names:
            path = os.path.join(source, name)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise SystemExit("flaky: %s is not a regular file" % path)
            self.files["/" + name] = (fd, st)
        self.ranges = ranges  # "/name" -> [Flaky]
        for key in ranges:
            if key not in self.files:
                raise SystemExit("flaky: a range names %s, which is not served" % key[1:])
            size = self.files[key][1].st_size
            for r in ranges[key]:
                if r.end > size:
                    raise SystemExit("flaky: range %d..%d is past the end of %s (%d bytes)"
                                     % (r.start, r.end, key[1:], size))
        self.log = log
        self.mountpoint = mountpoint
        self.mutex = threading.Lock()
        self.t0 = time.monotonic()
        self.root = os.stat(source)

    def init(self, path):
        print("flaky: ready %s" % self.mountpoint, flush=True)

    def getattr(self, path, fh=None):
        if path == "/":
            st = self.root
            return dict(st_mode=stat.S_IFDIR | 0o555, st_nlink=2, st_uid=0, st_gid=0,
                        st_size=0, st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns,
                        st_ctime=st.st_ctime_ns)
        if path not in self.files:
            raise fuse.FuseOSError(errno.ENOENT)
        st = self.files[path][1]
        return dict(st_mode=stat.S_IFREG | 0o444, st_nlink=1, st_uid=0, st_gid=0,
                    st_size=st.st_size, st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns,
                    st_ctime=st.st_ctime_ns)

    def readdir(self, path, fh):
        if path != "/":
            raise fuse.FuseOSError(errno.ENOTDIR)
        return [".", ".."] + [k[1:] for k in sorted(self.files)]

    def open(self, path, fi):
        if path not in self.files:
            raise fuse.FuseOSError(errno.ENOENT)
        if fi.flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            raise fuse.FuseOSError(errno.EROFS)
        fi.direct_io = 1
        fi.keep_cache = 0
        fi.fh = 0
        return 0

    def read(self, path, size, offset, fi):
        if path not in self.files:
            raise fuse.FuseOSError(errno.ENOENT)
        fd, _ = self.files[path]
        data = bytearray(os.pread(fd, size, offset))
        good = bad = 0
        with self.mutex:
            for r in self.ranges.get(path, ()):
                g, b = r.apply(offset, data)
                good += g
                bad += b
            if self.log is not None and (good or bad):
                pid = fuse.fuse_get_context()[2]
                self.log.write("read %s %d %d pid=%d t=%.6f true=%d altered=%d\n"
                               % (path[1:], offset, len(data), pid,
                                  time.monotonic() - self.t0, good, bad))
                self.log.flush()
        return bytes(data)

    def statfs(self, path):
        return dict(f_bsize=4096, f_frsize=4096, f_blocks=0, f_bfree=0, f_bavail=0,
                    f_files=len(self.files) + 1, f_ffree=0, f_favail=0, f_namemax=255)

    # Read-only: everything that would change the tree is refused.
    def _rofs(self, *args):
        raise fuse.FuseOSError(errno.EROFS)

    chmod = chown = create = mkdir = mknod = rename = rmdir = symlink = _rofs
    truncate = unlink = utimens = write = link = setxattr = removexattr = _rofs


def parse_range(text, default_mode):
    parts = text.rsplit(":", 3)
    if len(parts) == 4 and parts[3] in MODES:
        name, start, end, mode = parts
    else:
        name, start, end = text.rsplit(":", 2)
        mode = default_mode
    return {"file": name, "start": int(start), "end": int(end), "mode": mode}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source")
    ap.add_argument("mountpoint")
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--range", action="append", default=[])
    ap.add_argument("--mode", default=None, choices=MODES)
    ap.add_argument("--payload")
    ap.add_argument("--config")
    ap.add_argument("--log")
    ap.add_argument("--background", action="store_true")
    args = ap.parse_args()

    conf = {}
    if args.config:
        with open(args.config) as f:
            conf = json.load(f)
    mode = args.mode or conf.get("mode") or "first-true"
    files = args.file or conf.get("files") or sorted(
        n for n in os.listdir(args.source)
        if stat.S_ISREG(os.lstat(os.path.join(args.source, n)).st_mode))
    specs = [dict(r) for r in conf.get("ranges", [])]
    specs += [parse_range(r, mode) for r in args.range]
    payload_path = args.payload or conf.get("payload")
    payload = None
    if payload_path:
        with open(payload_path, "rb") as f:
            payload = f.read()
        total = sum(s["end"] - s["start"] for s in specs)
        if len(payload) != total:
            raise SystemExit("flaky: the payload has %d bytes, the ranges %d" % (len(payload), total))
    ranges = {}
    at = 0
    for s in specs:
        r = Flaky(int(s["start"]), int(s["end"]), s.get("mode", mode), payload, at)
        at += r.end - r.start
        ranges.setdefault("/" + s["file"], []).append(r)
    for rs in ranges.values():
        rs.sort(key=lambda r: r.start)
        for x, y in zip(rs, rs[1:]):
            if x.end > y.start:
                raise SystemExit("flaky: ranges %d..%d and %d..%d overlap"
                                 % (x.start, x.end, y.start, y.end))
    log_path = args.log or conf.get("log")
    log = open(log_path, "a") if log_path else None

    ops = FlakyFS(args.source, files, ranges, log, args.mountpoint)
    fuse.FUSE(
        ops,
        args.mountpoint,
        raw_fi=True,
        foreground=not args.background,
        nothreads=True,
        ro=True,
        direct_io=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
        allow_other=True,
        fsname="flaky",
    )


if __name__ == "__main__":
    main()
