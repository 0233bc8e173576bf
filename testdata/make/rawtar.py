#!/usr/bin/env python3
"""Dump the raw headers of a tar (plain, or gzip/zstd-compressed): every
512-byte header block with its offset, typeflag, size field, name (prefix
joined), link name, magic; the records of PAX 'x'/'g' headers (values as
Python bytes literals, so newlines and NULs stay visible); GNU 'L'/'K' long
names; the sparse map of old-GNU 'S' headers and of their extension blocks;
and the map at the start of the data of PAX sparse 1.0 members.

usage: rawtar.py FILE.tar

Used by make/tarforms.sh to prove which tar form a layer really is in; it
reads the bytes itself, not through a tar library.
"""
import gzip
import subprocess
import sys


def num(field):
    """Octal number field (or base-256 when the top bit is set)."""
    if field and field[0] & 0x80:
        v = field[0] & 0x7F
        for b in field[1:]:
            v = (v << 8) | b
        return v
    field = field.replace(b"\0", b" ").strip()
    return int(field, 8) if field else 0


def text(b):
    return repr(bytes(b))[2:-1]


def pax_records(data):
    out = []
    i = 0
    while i < len(data):
        if data[i] == 0:
            break
        sp = data.index(b" ", i)
        n = int(data[i:sp])
        rec = data[sp + 1:i + n - 1]  # drop "LEN " and the trailing "\n"
        k, _, v = rec.partition(b"=")
        out.append((k.decode("utf-8", "replace"), v))
        i += n
    return out


def sparse_entries(block, start, count):
    out = []
    for j in range(count):
        e = block[start + j * 24:start + j * 24 + 24]
        if not e[:12].strip(b"\0"):
            break
        out.append((num(e[:12]), num(e[12:24])))
    return out


def dump(d, out):
    off = 0
    pending_pax = {}
    while off + 512 <= len(d):
        h = d[off:off + 512]
        if h == b"\0" * 512:
            n = 0
            while d[off + n * 512:off + n * 512 + 512] == b"\0" * 512:
                n += 1
            out.write(f"{off:9d} ({n} zero blocks)\n")
            off += n * 512
            continue
        name = h[0:100].split(b"\0")[0]
        t = h[156:157]
        size = num(h[124:136])
        magic = h[257:265]
        kind = {b"ustar\x0000": "ustar", b"ustar  \0": "gnu"}.get(magic, text(magic))
        if kind == "ustar" and h[345] != 0:
            name = h[345:500].split(b"\0")[0] + b"/" + name
        link = h[157:257].split(b"\0")[0]
        line = (f"{off:9d} type={t.decode('latin-1') or '0'!s} {kind} "
                f"mode={num(h[100:108]):o} size={size} name={text(name)}")
        if link:
            line += f" link={text(link)}"
        out.write(line + "\n")
        data_off = off + 512
        if t == b"S" and kind == "gnu":
            ents = sparse_entries(h, 386, 4)
            ext = h[482]
            out.write(f"{'':9s}   old GNU sparse: realsize={num(h[483:495])} "
                      f"isextended={ext} header map={ents}\n")
            while ext:
                b = d[data_off:data_off + 512]
                ents = sparse_entries(b, 0, 21)
                ext = b[504]
                out.write(f"{data_off:9d}   extension block: {len(ents)} entries "
                          f"isextended={ext} map={ents}\n")
                data_off += 512
        data = d[data_off:data_off + size]
        if t in (b"x", b"g"):
            recs = pax_records(data)
            for k, v in recs:
                out.write(f"{'':9s}   {k}={text(v)}\n")
            if t == b"x":
                pending_pax = dict(recs)
        elif t in (b"L", b"K"):
            out.write(f"{'':9s}   {text(data)}\n")
        else:
            if pending_pax.get("GNU.sparse.major") == b"1":
                # map: decimal numbers, one per line, padded to a block boundary
                lines = []
                pos = 0
                while len(lines) < 1 or len(lines) < 1 + 2 * int(lines[0]):
                    nl = data.index(b"\n", pos)
                    lines.append(data[pos:nl].decode())
                    pos = nl + 1
                n = int(lines[0])
                pairs = [(int(lines[1 + 2 * j]), int(lines[2 + 2 * j])) for j in range(n)]
                maplen = (pos + 511) // 512 * 512
                out.write(f"{'':9s}   PAX 1.0 sparse map in data ({maplen} bytes): {pairs}\n")
            pending_pax = {}
        off = data_off + (size + 511) // 512 * 512
    out.write(f"{off:9d} end of archive data ({len(d)} bytes in file)\n")


def main():
    with open(sys.argv[1], "rb") as f:
        d = f.read()
    if d[:2] == b"\x1f\x8b":
        d = gzip.decompress(d)
    elif d[:4] == b"\x28\xb5\x2f\xfd":
        d = subprocess.run(["zstd", "-dc"], input=d, capture_output=True, check=True).stdout
    dump(d, sys.stdout)


if __name__ == "__main__":
    main()
