#!/usr/bin/env python3
"""Cross-checks used by make/tarforms.sh (run as root).

usage: treecheck.py tree DIR_A DIR_B
           compare two extracted trees: type, mode, owner, mtime (seconds),
           size, content, symlink target, device numbers, every xattr
           (name and value bytes); prints each difference, exit 1 if any
       treecheck.py tarfile LAYER.tar DIR
           read LAYER.tar with Python's tarfile (which understands the GNU
           sparse forms) and check that every member has, in DIR, the same
           type, mode, owner, logical content and SCHILY.xattr.* values
       treecheck.py sparse DIR
           print logical size and allocated bytes of every regular file
       treecheck.py xattrs DIR
           print every xattr (hex) of every path and flag values holding 0x0a
"""
import hashlib
import os
import stat
import sys
import tarfile


def walk(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = p
    out["."] = root
    return out


def xattrs(p):
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(p, n, follow_symlinks=False) for n in sorted(names)}


def describe(p):
    st = os.lstat(p)
    d = {
        "type": stat.S_IFMT(st.st_mode),
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "owner": f"{st.st_uid}:{st.st_gid}",
        "mtime": int(st.st_mtime),
        "xattrs": xattrs(p),
    }
    if stat.S_ISREG(st.st_mode):
        d["size"] = st.st_size
        with open(p, "rb") as f:
            d["sha256"] = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(p)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d["dev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return d


def cmd_tree(a, b):
    ta, tb = walk(a), walk(b)
    diffs = []
    for k in sorted(set(ta) | set(tb)):
        if k not in ta or k not in tb:
            diffs.append(f"{k}: only in {'B' if k not in ta else 'A'}")
            continue
        da, db = describe(ta[k]), describe(tb[k])
        for f in sorted(set(da) | set(db)):
            if da.get(f) != db.get(f):
                diffs.append(f"{k}: {f} {da.get(f)!r} vs {db.get(f)!r}")
    for d in diffs:
        print(d)
    print(f"tree {a} vs {b}: {len(ta)} paths, {len(diffs)} differences")
    return 1 if diffs else 0


def cmd_tarfile(layer, root):
    bad = 0
    n = 0
    with tarfile.open(layer, "r:*") as tf:
        for m in tf:
            n += 1
            name = m.name
            real = m.pax_headers.get("GNU.sparse.name")
            if real is not None and real != name:
                # Python's tarfile applies the PAX records in order, so a `path`
                # record after GNU.sparse.name (GNU tar 0.1 form, long names)
                # wins; GNU tar and Go use GNU.sparse.name.
                print(f"note: tarfile names a member {name!r}; its GNU.sparse.name is {real!r}")
                name = real
            name = os.path.normpath(name)
            p = os.path.join(root, name)
            if not os.path.lexists(p):
                print(f"{m.name}: missing in {root}")
                bad += 1
                continue
            st = os.lstat(p)
            probs = []
            if stat.S_IMODE(st.st_mode) != (m.mode & 0o7777):
                probs.append(f"mode {m.mode & 0o7777:o} vs {stat.S_IMODE(st.st_mode):o}")
            if (st.st_uid, st.st_gid) != (m.uid, m.gid):
                probs.append(f"owner {m.uid}:{m.gid} vs {st.st_uid}:{st.st_gid}")
            if m.isreg():
                if not stat.S_ISREG(st.st_mode):
                    probs.append("not a regular file")
                else:
                    data = tf.extractfile(m).read()
                    with open(p, "rb") as f:
                        if f.read() != data:
                            probs.append(f"content differs (tarfile {len(data)} bytes)")
            want = {k[len("SCHILY.xattr."):]: v.encode("utf-8", "surrogateescape")
                    for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
            have = xattrs(p)
            for k, v in want.items():
                if have.get(k) != v:
                    probs.append(f"xattr {k}: tar {v!r} vs disk {have.get(k)!r}")
            for pr in probs:
                print(f"{m.name}: {pr}")
            bad += len(probs)
    print(f"tarfile {layer} vs {root}: {n} members, {bad} problems")
    return 1 if bad else 0


def cmd_sparse(root):
    for k, p in sorted(walk(root).items()):
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode):
            print(f"{k}: size={st.st_size} allocated={st.st_blocks * 512}")
    return 0


def cmd_xattrs(root):
    for k, p in sorted(walk(root).items()):
        for n, v in xattrs(p).items():
            flag = "  <- holds 0a" if b"\n" in v else ""
            print(f"{k}: {n}=0x{v.hex()}{flag}")
    return 0


def main():
    cmd = sys.argv[1]
    fn = {"tree": cmd_tree, "tarfile": cmd_tarfile, "sparse": cmd_sparse,
          "xattrs": cmd_xattrs}.get(cmd)
    if fn is None:
        sys.exit(__doc__)
    sys.exit(fn(*sys.argv[2:]))


if __name__ == "__main__":
    main()
