#!/usr/bin/env python3
"""Print what a saved image holds: images, config digests and, for each
layer, every tar entry (type, mode, owner, size, link target, xattrs).

usage: describe.py docker-save ARCHIVE.tar      (any manifest.json archive)
       describe.py oci-dir DIR                  (OCI image layout directory)
       describe.py oci-archive ARCHIVE.tar      (OCI layout inside a tar)

Used by the generators to write the layers*.txt listings next to the
archives; paths printed are relative to the archive or directory.
"""
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile

TYPES = {
    tarfile.REGTYPE: "f", tarfile.AREGTYPE: "f", tarfile.DIRTYPE: "d",
    tarfile.SYMTYPE: "l", tarfile.LNKTYPE: "h", tarfile.CHRTYPE: "c",
    tarfile.BLKTYPE: "b", tarfile.FIFOTYPE: "p",
}


def decompress(data):
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data), "gzip"
    if data[:4] == b"\x28\xb5\x2f\xfd":
        out = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True)
        return out.stdout, "zstd"
    return data, "none"


def entries(data):
    raw, comp = decompress(data)
    lines = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        for m in tf:
            t = TYPES.get(m.type, "?")
            s = f"    {t} {m.mode:04o} {m.uid}:{m.gid} {m.size:>6} {m.name}"
            if t in "lh":
                s += f" -> {m.linkname}"
            if t in "cb":
                s += f" [{m.devmajor},{m.devminor}]"
            xattrs = {k[len("SCHILY.xattr."):]: v for k, v in m.pax_headers.items()
                      if k.startswith("SCHILY.xattr.")}
            if xattrs:
                s += " xattrs=" + ",".join(sorted(xattrs))
            lines.append(s)
    return comp, lines


class TarSource:
    def __init__(self, path):
        self.tf = tarfile.open(path, "r:*")
        self.members = {(m.name[2:] if m.name.startswith("./") else m.name): m
                        for m in self.tf.getmembers()}

    def read(self, name, depth=0):
        m = self.members[name]
        if m.issym() and depth < 8:
            target = os.path.normpath(os.path.join(os.path.dirname(name), m.linkname))
            return self.read(target, depth + 1)
        if m.islnk() and depth < 8:
            return self.read(m.linkname, depth + 1)
        return self.tf.extractfile(m).read()

    def has(self, name):
        return name in self.members

    def symlink(self, name):
        m = self.members.get(name)
        return m.linkname if m is not None and m.issym() else None


class DirSource:
    def __init__(self, path):
        self.root = path

    def read(self, name):
        with open(os.path.join(self.root, name), "rb") as f:
            return f.read()

    def has(self, name):
        return os.path.exists(os.path.join(self.root, name))

    def symlink(self, name):
        p = os.path.join(self.root, name)
        return os.readlink(p) if os.path.islink(p) else None


def describe_layer(src, name, label):
    data = src.read(name)
    comp, lines = entries(data)
    link = src.symlink(name)
    extra = f" (symlink -> {link})" if link else ""
    print(f"  layer {label}: {name}{extra} compression={comp}")
    for line in lines:
        print(line)


def docker_save(src):
    manifest = json.loads(src.read("manifest.json"))
    for img in manifest:
        print(f"image {', '.join(img.get('RepoTags') or ['<untagged>'])}")
        print(f"  config: {img['Config']}")
        cfg = json.loads(src.read(img["Config"]))
        hist = cfg.get("history", [])
        empty = sum(1 for h in hist if h.get("empty_layer"))
        print(f"  history: {len(hist)} entries, {empty} empty_layer")
        for i, layer in enumerate(img["Layers"]):
            describe_layer(src, layer, i)
        print()


def oci(src):
    index = json.loads(src.read("index.json"))

    def walk(desc, indent):
        blob = f"blobs/{desc['digest'].replace(':', '/')}"
        mt = desc.get("mediaType", "")
        ann = desc.get("annotations", {})
        plat = desc.get("platform")
        ptxt = ""
        if plat:
            ptxt = " platform=" + "/".join(
                x for x in (plat.get("os"), plat.get("architecture"), plat.get("variant")) if x)
        print(f"{indent}{mt} {desc['digest']}{ptxt}"
              + (f" annotations={json.dumps(ann, sort_keys=True)}" if ann else ""))
        doc = json.loads(src.read(blob))
        if "manifests" in doc:
            for d in doc["manifests"]:
                walk(d, indent + "  ")
            return
        print(f"{indent}  config: {doc['config']['digest']} ({doc['config'].get('mediaType')})")
        for i, layer in enumerate(doc.get("layers", [])):
            print(f"{indent}  layer {i} mediaType={layer['mediaType']}")
            if "tar" not in layer["mediaType"]:
                print(f"{indent}    (not a filesystem layer: {layer['size']} bytes)")
                continue
            describe_layer(src, f"blobs/{layer['digest'].replace(':', '/')}", i)

    for d in index["manifests"]:
        walk(d, "")
        print()


def main():
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "docker-save":
        docker_save(TarSource(path))
    elif kind == "oci-dir":
        oci(DirSource(path))
    elif kind == "oci-archive":
        oci(TarSource(path))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
