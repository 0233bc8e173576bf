#!/usr/bin/python3
"""Python's tarfile's view of archives, as JSON, for tests/tar_interop.rs to compare with ours.

usage: /usr/bin/python3 tests/interop/dump.py ARCHIVE...

Prints {"ARCHIVE": {"entries": [ENTRY, ...]}} (or {"error": "..."} where tarfile refuses the
archive), each ENTRY:

    name      hex of the name's bytes (surrogateescape undone), trailing slashes removed
    kind      file, dir, symlink, hardlink, char, block, fifo (or "type:<typeflag>")
    size      content size (a sparse file's logical size)
    mode      permission bits (mode & 0o7777)
    uid, gid
    mtime     [seconds, nanoseconds], exact from the PAX record when there is one (tarfile's own
              mtime is a float and cannot hold nanoseconds); floor for negative times
    atime     the same for a PAX atime, or null
    link      hex of the link target (symlinks, hard links), or null
    dev       [major, minor] for devices, or null
    xattrs    {hex name: hex value} from SCHILY.xattr.* records
    sha256    of the content, holes read as zeros
"""
import decimal
import hashlib
import json
import sys
import tarfile

KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.GNUTYPE_SPARSE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


def raw(s):
    return s.encode("utf-8", "surrogateescape")


def time(pax, key, fallback):
    v = pax.get(key)
    if v is None:
        if fallback is None:
            return None
        return [int(fallback), 0]
    try:
        d = decimal.Decimal(v)
    except decimal.InvalidOperation:  # tarfile itself took 0 for it
        return None if fallback is None else [int(fallback), 0]
    secs = int(d.to_integral_value(rounding=decimal.ROUND_FLOOR))
    nanos = int((d - secs) * 10**9)  # truncated: digits past the ninth are dropped
    return [secs, nanos]


def entry(tf, m):
    kind = KINDS.get(m.type, "type:" + m.type.decode("latin-1"))
    data = b""
    if m.isreg():
        data = tf.extractfile(m).read()
    return {
        "name": raw(m.name).rstrip(b"/").hex(),
        "kind": kind,
        "size": m.size if m.isreg() else 0,
        "mode": m.mode & 0o7777,
        "uid": m.uid,
        "gid": m.gid,
        "mtime": time(m.pax_headers, "mtime", m.mtime),
        "atime": time(m.pax_headers, "atime", None),
        "link": raw(m.linkname).hex() if m.issym() or m.islnk() else None,
        "dev": [m.devmajor, m.devminor] if m.ischr() or m.isblk() else None,
        "xattrs": {
            raw(k[len("SCHILY.xattr."):]).hex(): raw(v).hex()
            for k, v in m.pax_headers.items()
            if k.startswith("SCHILY.xattr.")
        },
        "sha256": hashlib.sha256(data).hexdigest(),
    }


out = {}
for path in sys.argv[1:]:
    try:
        with tarfile.open(path, "r:", encoding="utf-8", errors="surrogateescape") as tf:
            out[path] = {"entries": [entry(tf, m) for m in tf]}
    except Exception as e:  # noqa: BLE001 - the test wants to see any refusal
        out[path] = {"error": f"{type(e).__name__}: {e}"}
json.dump(out, sys.stdout, indent=1)
