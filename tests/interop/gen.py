#!/usr/bin/python3
"""Writes the archives of tests/tar_interop.rs: the same kinds of entry in every tar form, by
Python's tarfile (from TarInfo objects, so every field is chosen) and by GNU tar (from trees
made on disk, sparse files included).

usage: /usr/bin/python3 tests/interop/gen.py OUTDIR

OUTDIR/<name>.tar for each archive; OUTDIR/trees/ holds the trees GNU tar read. Needs GNU tar,
truncate and dd on PATH. As root it also makes device nodes and files owned by other users for
GNU tar to store; otherwise those are left out of the GNU tar archives (Python's archives have
them either way).

Run with Debian's /usr/bin/python3: the archives must not depend on which Python is first on
PATH, and the test reads them back with the same interpreter.
"""
import io
import os
import subprocess
import sys
import tarfile

OUT = sys.argv[1]
TREES = os.path.join(OUT, "trees")
ROOT = os.geteuid() == 0
ENV = dict(os.environ, LC_ALL="C")

# A fixed time with nanoseconds, for everything GNU tar reads from disk.
T0 = 1_700_000_000_123_456_789

# Xattr values holding the bytes a line-based PAX reader breaks on.
XATTRS = {
    "user.bin": b"\x01\n\x00\xff\n",
    "user.nl": b"line one\nline two\n",
    "user.eq": b"a=b=c",
    "user.empty": b"",
}

LONG_TARGET = "../" + "t" * 150 + "/target"  # a symlink target > 100 bytes
# > 100 and > 255 bytes, every component within NAME_MAX.
LONG_DIR = "long-" + "d" * 95
LONG_NAME = LONG_DIR + "/" + "n" * 60 + ".txt"  # ~ 160 bytes
LONGER_DIR = LONG_DIR + "/" + "e" * 120
LONGER_NAME = LONGER_DIR + "/" + "f" * 100 + ".bin"  # ~ 330 bytes
NON_UTF8 = b"bytes-\xff\xfe-\xc3(.bin"  # not UTF-8


def fs(b):
    """Bytes as the str Python's tarfile and os want (surrogateescape)."""
    return b.decode("utf-8", "surrogateescape") if isinstance(b, bytes) else b


def run(*argv, cwd=None):
    subprocess.run(argv, check=True, cwd=cwd, env=ENV)


# ---------------------------------------------------------------------------------------------
# Python's tarfile


def info(name, type=tarfile.REGTYPE, data=b"", **kw):
    t = tarfile.TarInfo(fs(name))
    t.type = type
    t.mode = kw.pop("mode", 0o755 if type == tarfile.DIRTYPE else 0o644)
    t.uid = kw.pop("uid", 0)
    t.gid = kw.pop("gid", 0)
    t.mtime = kw.pop("mtime", 1_700_000_000)
    t.uname = t.gname = ""
    t.linkname = fs(kw.pop("link", ""))
    t.devmajor, t.devminor = kw.pop("dev", (0, 0))
    pax = kw.pop("pax", {})
    # Values as str; bytes that are not UTF-8 go in as surrogates and tarfile writes them raw,
    # adding hdrcharset=BINARY.
    t.pax_headers = {k: fs(v) for k, v in pax.items()}
    assert not kw, kw
    t.size = len(data)
    return t, data


def xattrs(d):
    return {"SCHILY.xattr." + k: v for k, v in d.items()}


def write(path, fmt, members, **tarargs):
    with tarfile.open(
        path, "w", format=fmt, encoding="utf-8", errors="surrogateescape", **tarargs
    ) as tf:
        for t, data in members:
            tf.addfile(t, io.BytesIO(data) if t.isreg() else None)


def common_members(long_ok=True):
    """Entries every format can hold; with long names and links if `long_ok`."""
    m = [
        info("dir", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000),
        info("dir/file.txt", data=b"hello\n", uid=1000, gid=1001),
        info("dir/empty"),
        info("dir/link", tarfile.SYMTYPE, link="file.txt", mode=0o777),
        info("setuid", data=b"#!/bin/sh\n", mode=0o4755),
        info("sticky", tarfile.DIRTYPE, mode=0o1777),
        info("hard", tarfile.LNKTYPE, link="dir/file.txt"),
        info("null", tarfile.CHRTYPE, dev=(1, 3), mode=0o666),
        info("disk", tarfile.BLKTYPE, dev=(259, 1048575), mode=0o660),
        info("fifo", tarfile.FIFOTYPE),
        # ustar splits this one into prefix and name.
        info("p" * 120 + "/split-name.txt", data=b"split\n"),
    ]
    if long_ok:
        m += [
            info(LONG_DIR, tarfile.DIRTYPE),
            info(LONG_NAME, data=b"long\n" * 100),
            info(LONGER_DIR, tarfile.DIRTYPE),
            info(LONGER_NAME, data=b"longer"),
            info(NON_UTF8, data=b"\xff" * 10),
            info("longlink", tarfile.SYMTYPE, link=LONG_TARGET, mode=0o777),
            info("hard-to-long", tarfile.LNKTYPE, link=LONGER_NAME),
            info("nonutf8-link", tarfile.SYMTYPE, link=NON_UTF8, mode=0o777),
        ]
    return m


def python_archives():
    # PAX: long names and links, binary xattrs, numbers out of the octal fields, times.
    pax = common_members() + [
        info("xattrs", data=b"x", pax=xattrs(XATTRS)),
        info(
            "xattr-cap",
            data=b"cap",
            pax=xattrs({"security.capability": b"\x01\x00\x00\x02\x00\x20\x00\x00" + b"\0" * 12}),
        ),
        info("dir-xattr", tarfile.DIRTYPE, pax=xattrs({"user.dir": b"\n\n"})),
        info("big-ids", data=b"ids", uid=10_000_000, gid=4_000_000_000),
        info("frac-float", data=b"t", mtime=1_700_000_000.25),
        info("frac-nanos", data=b"t", pax={"mtime": "1700000000.123456789", "atime": "1700000001.5"}),
        info("frac-long", data=b"t", pax={"mtime": "1700000000.1234567891234"}),
        info("neg-float", data=b"t", mtime=-1.5),
        info("neg-int", data=b"t", mtime=-1000),
        info("big-mtime", data=b"t", mtime=2**35),
        # An empty value: POSIX says it deletes the keyword, here (no global header) a no-op for
        # `comment`; for an xattr it is how GNU tar writes an empty value.
        info("empty-values", data=b"e", pax={"comment": "", "SCHILY.xattr.user.empty": ""}),
        # Empty values of keywords that replace header fields: the header's name and mtime hold.
        info("empty-path", data=b"p", pax={"path": ""}),
        info("empty-mtime", data=b"m", pax={"mtime": ""}),
    ]
    write(f"{OUT}/py-pax.tar", tarfile.PAX_FORMAT, pax)

    # GNU: long names and links as 'L'/'K' entries, base-256 numbers.
    gnu = common_members() + [
        info("big-ids", data=b"ids", uid=10_000_000, gid=4_000_000_000),
        info("big-mtime", data=b"t", mtime=2**35),
        info("neg-mtime", data=b"t", mtime=-1000),
        info("neg-mtime-big", data=b"t", mtime=-(2**40)),
        info("big-dev", tarfile.CHRTYPE, dev=(2**22, 2**21)),
    ]
    write(f"{OUT}/py-gnu.tar", tarfile.GNU_FORMAT, gnu)

    # ustar: names split into prefix and name; nothing that needs an extension.
    ustar = common_members(long_ok=False) + [
        info("q" * 150 + "/" + "r" * 99, data=b"255 bytes"),
        info("uid-max-octal", data=b"u", uid=0o7777777, gid=0o7777777),
    ]
    write(f"{OUT}/py-ustar.tar", tarfile.USTAR_FORMAT, ustar)

    # A global header ('g') before the entries: uid, mtime, an xattr and a comment for all; one
    # entry overrides them, one deletes them with empty values, one has no 'x' header at all.
    glob = {
        "uid": "4242",
        "mtime": "1600000000.5",
        "SCHILY.xattr.user.global": "from g\n",
        "comment": "global",
    }
    members = [
        info("g-plain", data=b"plain"),  # no 'x' header of its own
        info("g-own-x", data=b"own", pax={"SCHILY.xattr.user.own": "own"}),
        info("g-override", data=b"o", pax={"uid": "7", "SCHILY.xattr.user.global": "mine"}),
        info("g-delete", data=b"d", pax={"uid": "", "SCHILY.xattr.user.global": ""}),
    ]
    write(f"{OUT}/py-global.tar", tarfile.PAX_FORMAT, members, pax_headers=glob)

    # Two global headers: a second archive, with its own 'g', appended to the first without the
    # first's end-of-archive blocks. The second 'g' changes the xattr and adds gid; the first's
    # uid still holds for the entry after it (POSIX: a global value lasts until a later global
    # record of the same keyword).
    first = io.BytesIO()
    with tarfile.open(fileobj=first, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"uid": "11", "SCHILY.xattr.user.g": "one"}) as tf:
        t, d = info("g1-a", data=b"a", pax={"comment": "x"})
        tf.addfile(t, io.BytesIO(d))
    second = io.BytesIO()
    with tarfile.open(fileobj=second, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"gid": "22", "SCHILY.xattr.user.g": "two"}) as tf:
        t, d = info("g2-b", data=b"b", pax={"comment": "y"})
        tf.addfile(t, io.BytesIO(d))
    a = first.getvalue()
    # tarfile ends an archive with two zero blocks, then pads to its record size.
    end = len(a)
    while end >= 512 and a[end - 512:end] == b"\0" * 512:
        end -= 512
    with open(f"{OUT}/py-global-twice.tar", "wb") as f:
        f.write(a[:end] + second.getvalue())


# ---------------------------------------------------------------------------------------------
# GNU tar


def write_file(path, data=b"", mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def stamp(tree):
    """Every mtime (and atime) to T0 plus a little, bottom up, symlinks too."""
    i = 0
    for top, dirs, files in os.walk(tree, topdown=False):
        for n in sorted(files) + sorted(dirs) + [None]:
            p = top if n is None else os.path.join(top, n)
            if n is not None and not os.path.islink(p) and os.path.isdir(p):
                continue  # stamped when walked as `top`
            i += 1
            t = T0 + i * 1_000_111
            os.utime(p, ns=(t + 7, t), follow_symlinks=False)


def tree_main(t, long_ok=True, devices=True, fifo=True, split=True):
    os.makedirs(f"{t}/dir")
    os.chmod(f"{t}/dir", 0o750)
    write_file(f"{t}/dir/file.txt", b"hello\n")
    write_file(f"{t}/dir/empty")
    write_file(f"{t}/setuid", b"#!/bin/sh\n", 0o4755)
    os.mkdir(f"{t}/sticky")
    os.chmod(f"{t}/sticky", 0o1777)
    os.symlink("file.txt", f"{t}/dir/link")
    os.link(f"{t}/dir/file.txt", f"{t}/hard")
    if fifo:
        os.mkfifo(f"{t}/fifo")
    if devices and ROOT:
        os.mknod(f"{t}/null", 0o20666, os.makedev(1, 3))
        os.mknod(f"{t}/disk", 0o60660, os.makedev(259, 1048575))
        os.chmod(f"{t}/null", 0o666)
        os.chmod(f"{t}/disk", 0o660)
    # "./ppp.../split-name.txt" is 115 bytes; ustar splits it (and the directory's name).
    if split:
        os.makedirs(f"{t}/" + "p" * 98)
        write_file(f"{t}/" + "p" * 98 + "/split-name.txt", b"split\n")
    if ROOT:
        write_file(f"{t}/owned", b"owned")
        os.chown(f"{t}/owned", 1000, 1001)
    if ROOT and long_ok:  # ids that ustar and v7 cannot hold
        write_file(f"{t}/owned-big", b"owned")
        os.chown(f"{t}/owned-big", 10_000_000, 4_000_000_000)
    if long_ok:
        os.makedirs(f"{t}/{LONGER_DIR}")
        write_file(f"{t}/{LONG_NAME}", b"long\n" * 100)
        write_file(f"{t}/{LONGER_NAME}", b"longer")
        write_file(os.path.join(t.encode(), NON_UTF8), b"\xff" * 10)
        os.symlink(LONG_TARGET, f"{t}/longlink")
        os.link(f"{t}/{LONGER_NAME}", f"{t}/hard-to-long")
        os.symlink(NON_UTF8, os.path.join(t.encode(), b"nonutf8-link"))
    stamp(t)


def tree_xattrs(t):
    tree_main(t)
    write_file(f"{t}/xattrs", b"x")
    for k, v in XATTRS.items():
        os.setxattr(f"{t}/xattrs", k, v)
    os.setxattr(f"{t}/dir", "user.dir", b"\n\n")
    stamp(t)


def sparse_file(path, size, pieces):
    """truncate to `size`, then write each (offset, bytes) with dd conv=notrunc."""
    run("truncate", "-s", str(size), path)
    for offset, data in pieces:
        subprocess.run(
            ["dd", f"of={path}", "bs=1", f"seek={offset}", "conv=notrunc", "status=none"],
            input=data, check=True, env=ENV)


def tree_sparse(t):
    os.makedirs(t)
    K = 1024
    # 30 pieces: more than the 4 of an old GNU header and the 21 of one extension block.
    sparse_file(f"{t}/many", 30 * 16 * K + 4 * K, [(i * 16 * K + 100, b"piece %02d" % i) for i in range(30)])
    sparse_file(f"{t}/tail-hole", 256 * K, [(0, b"head")])
    sparse_file(f"{t}/head-hole", 256 * K, [(256 * K - 5, b"tail!")])
    sparse_file(f"{t}/all-hole", 256 * K, [])
    # A name over 100 bytes: PAX 0.1 stores it in GNU.sparse.name and puts `path` (the
    # GNUSparseFile.N/ name) after it.
    sparse_file(f"{t}/" + "s" * 120, 256 * K, [(100 * K, b"abc")])
    write_file(f"{t}/dense", b"not sparse\n")
    stamp(t)


def gnu_tar(name, tree, *opts):
    run("tar", "--sort=name", "--numeric-owner", *opts, "-C", tree, "-cf", f"{OUT}/{name}.tar", ".")


def gnu_archives():
    os.makedirs(TREES)
    T = lambda n: os.path.join(TREES, n)  # noqa: E731

    tree_xattrs(T("main"))
    gnu_tar("gnu-posix", T("main"), "--format=posix", "--xattrs", "--xattrs-include=*")
    gnu_tar("gnu-posix-noatime", T("main"), "--format=posix", "--xattrs", "--xattrs-include=*",
            "--pax-option=delete=atime,delete=ctime,exthdr.name=%d/PaxHeaders/%f")
    gnu_tar("gnu-gnu", T("main"), "--format=gnu")
    gnu_tar("gnu-oldgnu", T("main"), "--format=oldgnu")

    tree_main(T("short"), long_ok=False)
    gnu_tar("gnu-ustar", T("short"), "--format=ustar")
    tree_main(T("v7"), long_ok=False, devices=False, fifo=False, split=False)
    gnu_tar("gnu-v7", T("v7"), "--format=v7")

    # Numbers that do not fit the octal fields: base-256 in GNU format, records in PAX.
    os.makedirs(T("small"))
    write_file(T("small") + "/f", b"f")
    os.mkdir(T("small") + "/d")
    for fmt in ("gnu", "posix"):
        gnu_tar(f"gnu-bignum-{fmt}", T("small"), f"--format={fmt}", "--owner=:10000000",
                "--group=:4000000000", "--mtime=@34359738368")
        gnu_tar(f"gnu-negtime-{fmt}", T("small"), f"--format={fmt}", "--mtime=@-1000")

    tree_sparse(T("sparse"))
    gnu_tar("gnu-sparse-gnu", T("sparse"), "--format=gnu", "--sparse")
    gnu_tar("gnu-sparse-oldgnu", T("sparse"), "--format=oldgnu", "--sparse")
    for v in ("0.0", "0.1", "1.0"):
        gnu_tar(f"gnu-sparse-pax-{v}", T("sparse"), "--format=posix", "--sparse",
                f"--sparse-version={v}")


python_archives()
gnu_archives()
