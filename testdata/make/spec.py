#!/usr/bin/env python3
"""Write, to specification, archive layouts that the Docker 20.10 on the
build machine cannot produce.  Layers are small synthetic tars (built here
with tarfile, fixed mtimes); everything is byte-for-byte reproducible.

usage: spec.py OUT_DIR REF_DIR
  OUT_DIR  testdata/spec: the archives
  REF_DIR  scratch: one plain OCI layout per image (ref "ref") that spec.sh
           unpacks with umoci to get the independent expected rootfs

Archives written (see testdata/README.md for what each image holds):
  docker25.tar         `docker save` of Docker 25+/26/27 with the graphdriver
                       store: OCI layout + manifest.json pointing at
                       blobs/sha256/<hex>, uncompressed layers, two images
  containerd.tar       `docker save` of Docker with the containerd image store:
                       index.json -> nested image index -> linux/amd64 manifest
                       + unknown/unknown attestation manifest; gzip layers;
                       manifest.json Layers are blobs/sha256/<gzip-hex>
  multi-platform/      OCI layout dir whose index.json lists linux/amd64,
                       linux/arm64/v8 and an unknown/unknown attestation
  ggcr.tar             go-containerregistry tarball.Write / `crane pull` format:
                       config "sha256:<hex>", layers "<hex>.tar.gz", manifest.json last
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

EPOCH = 1700000000
DAY = 86400


def sha(b):
    return hashlib.sha256(b).hexdigest()


def cjson(obj):
    """Go's json.Marshal: compact, keys in struct order (we keep dict order)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# ------------------------------------------------------------------ layers
def layer(entries, mtime):
    """entries: list of (kind, name, extra dict). Returns the tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, name, ex in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = ex.get("mtime", mtime)
            ti.uid, ti.gid = ex.get("owner", (0, 0))
            ti.uname = ti.gname = ""
            data = None
            if kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, ex.get("mode", 0o755)
            elif kind == "f":
                data = ex.get("data", b"")
                ti.type, ti.mode, ti.size = tarfile.REGTYPE, ex.get("mode", 0o644), len(data)
            elif kind == "l":
                ti.type, ti.mode, ti.linkname = tarfile.SYMTYPE, 0o777, ex["target"]
            elif kind == "h":
                ti.type, ti.mode, ti.linkname = tarfile.LNKTYPE, ex.get("mode", 0o644), ex["target"]
            elif kind == "wh":  # whiteout marker as Docker writes it
                ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o600, 0
                data = b""
            else:
                raise ValueError(kind)
            if "xattrs" in ex:
                ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in ex["xattrs"].items()}
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gz(b):
    return gzip.compress(b, compresslevel=9, mtime=0)


L1 = layer([
    ("d", "a", {}), ("f", "a/gone", {"data": b"gone\n"}), ("f", "a/keep", {"data": b"keep\n"}),
    ("d", "d", {}), ("d", "d/sub", {}), ("f", "d/sub/x", {"data": b"x\n"}),
    ("d", "etc", {}), ("f", "etc/flavor", {"data": b"amd64\n"}),
    ("d", "h", {}), ("f", "h/target", {"data": b"hard\n"}), ("h", "h/z-link", {"target": "h/target"}),
    ("d", "l", {}), ("l", "l/abs", {"target": "/a/keep"}), ("l", "l/rel", {"target": "../a/keep"}),
    ("l", "l/dangling", {"target": "nowhere"}),
    ("d", "m", {}), ("f", "m/setuid", {"data": b"s\n", "mode": 0o4755}),
    ("f", "m/owned", {"data": b"o\n", "owner": (1234, 5678)}),
    ("f", "m/xattr", {"data": b"x\n", "xattrs": {"user.foo": "bar"}}),
    ("d", "r", {}), ("f", "r/old", {"data": b"old\n"}), ("d", "r/oldsub", {}),
    ("f", "r/oldsub/y", {"data": b"y\n"}),
], EPOCH + 1 * DAY)

L2 = layer([
    ("d", "a", {}), ("wh", "a/.wh.gone", {}),
    ("wh", ".wh.d", {}),
    ("d", "h", {}), ("wh", "h/.wh.target", {}),
    ("d", "r", {}), ("wh", "r/.wh..wh..opq", {}), ("f", "r/new", {"data": b"new\n"}),
], EPOCH + 2 * DAY)

# only in image spec-b (docker25.tar): deletes a/keep, adds b-only
L3B = layer([
    ("d", "a", {}), ("wh", "a/.wh.keep", {}), ("f", "b-only", {"data": b"b\n"}),
], EPOCH + 3 * DAY)

# arm64 replacement for L1: same shape, different content, one extra file
L1ARM = layer([
    ("d", "a", {}), ("f", "a/gone", {"data": b"gone\n"}), ("f", "a/keep", {"data": b"keep-arm64\n"}),
    ("d", "d", {}), ("d", "d/sub", {}), ("f", "d/sub/x", {"data": b"x\n"}),
    ("d", "etc", {}), ("f", "etc/flavor", {"data": b"arm64\n"}),
    ("f", "arm64-only", {"data": b"arm64\n"}),
    ("d", "h", {}), ("f", "h/target", {"data": b"hard\n"}), ("h", "h/z-link", {"target": "h/target"}),
    ("d", "r", {}), ("f", "r/old", {"data": b"old\n"}),
], EPOCH + 1 * DAY)

# in-toto statement used as the attestation "layer"
INTOTO = cjson({"_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": "https://spdx.dev/Document",
                "subject": [], "predicate": {"spdxVersion": "SPDX-2.3", "name": "flatten-test"}})

CREATED = "2023-11-14T22:13:20Z"


def config(diff_ids, arch="amd64", variant=None, extra=None):
    cfg = {
        "architecture": arch,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"], "WorkingDir": "/", "Labels": {"org.example.case": "spec"},
        },
        "created": CREATED,
        "history": [{"created": CREATED, "created_by": f"spec.py layer {i + 1}"}
                    for i in range(len(diff_ids))]
        + [{"created": CREATED, "created_by": "LABEL org.example.case=spec", "empty_layer": True}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]},
    }
    if variant:
        cfg["variant"] = variant
    if extra:
        cfg["config"].update(extra)
    return cjson(cfg)


class Blobs:
    def __init__(self):
        self.blobs = {}

    def add(self, data):
        h = sha(data)
        self.blobs[h] = data
        return h


def desc(mt, data, **kw):
    d = {"mediaType": mt, "digest": "sha256:" + sha(data), "size": len(data)}
    d.update(kw)
    return d


MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_TGZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def manifest(cfg, layers, layer_mt):
    return cjson({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": desc(MT_CONFIG, cfg),
        "layers": [desc(layer_mt, l) for l in layers],
    })


def attestation(blobs, subject_manifest):
    cfg = cjson({"architecture": "unknown", "os": "unknown", "config": {},
                 "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(INTOTO)]}})
    blobs.add(cfg)
    blobs.add(INTOTO)
    m = cjson({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": desc(MT_CONFIG, cfg),
        "layers": [desc("application/vnd.in-toto+json", INTOTO,
                        annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"})],
    })
    blobs.add(m)
    return desc(MT_MANIFEST, m, annotations={
        "vnd.docker.reference.digest": "sha256:" + sha(subject_manifest),
        "vnd.docker.reference.type": "attestation-manifest"},
        platform={"architecture": "unknown", "os": "unknown"})


def write_tar(path, files, dirs=(), mtime=0, fmt=tarfile.USTAR_FORMAT, mode=0o644):
    """files: list of (name, bytes) in the order to write; dirs written first."""
    with tarfile.open(path, "w", format=fmt) as tf:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, mtime
            tf.addfile(ti)
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, mtime
            tf.addfile(ti, io.BytesIO(data))


def write_layout_dir(path, blobs, index):
    os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    for h, data in sorted(blobs.items()):
        with open(os.path.join(path, "blobs", "sha256", h), "wb") as f:
            f.write(data)
    with open(os.path.join(path, "oci-layout"), "wb") as f:
        f.write(b'{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(path, "index.json"), "wb") as f:
        f.write(index)


def ref_layout(ref_dir, name, cfg, layers):
    """Plain single-manifest OCI layout (gzip layers) for umoci to unpack."""
    blobs = Blobs()
    gzl = [gz(l) for l in layers]
    for l in gzl:
        blobs.add(l)
    blobs.add(cfg)
    m = manifest(cfg, gzl, MT_TGZ)
    blobs.add(m)
    idx = cjson({"schemaVersion": 2, "manifests": [
        desc(MT_MANIFEST, m, annotations={"org.opencontainers.image.ref.name": "ref"})]})
    write_layout_dir(os.path.join(ref_dir, name), blobs.blobs, idx)


# ------------------------------------------------------------------ docker 25
def docker25(out, ref_dir):
    images = [("flatten-test/spec-a", "latest", [L1, L2]),
              ("flatten-test/spec-b", "latest", [L1, L2, L3B])]
    blobs = Blobs()
    manifest_json, index_descs, repos = [], [], {}
    for repo, tag, layers in images:
        diff_ids = [sha(l) for l in layers]
        cfg = config(diff_ids)
        blobs.add(cfg)
        parent = ""
        for i, l in enumerate(layers):
            blobs.add(l)
            # the legacy v1 "layer json" Docker 25 still writes as an
            # unreferenced blob next to the real ones
            v1id = sha((parent + diff_ids[i] + str(i)).encode())
            v1 = {"id": v1id, "created": "1970-01-01T00:00:00Z",
                  "container_config": {"Cmd": None}, "os": "linux"}
            if parent:
                v1["parent"] = parent
            blobs.add(cjson(v1))
            parent = v1id
        m = manifest(cfg, layers, MT_TAR)
        blobs.add(m)
        index_descs.append(desc(MT_MANIFEST, m, annotations={
            "io.containerd.image.name": f"docker.io/{repo}:{tag}",
            "org.opencontainers.image.ref.name": tag},
            platform={"architecture": "amd64", "os": "linux"}))
        manifest_json.append({"Config": f"blobs/sha256/{sha(cfg)}",
                              "RepoTags": [f"{repo}:{tag}"],
                              "Layers": [f"blobs/sha256/{d}" for d in diff_ids]})
        repos.setdefault(repo, {})[tag] = diff_ids[-1]
        ref_layout(ref_dir, repo.split("/")[1], cfg, layers)
    index = cjson({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": index_descs})
    files = [(f"blobs/sha256/{h}", d) for h, d in sorted(blobs.blobs.items())]
    files += [("index.json", index),
              ("manifest.json", cjson(manifest_json) + b"\n"),
              ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
              ("repositories", cjson(repos) + b"\n")]
    write_tar(os.path.join(out, "docker25.tar"), files, dirs=["blobs/", "blobs/sha256/"])


# ------------------------------------------------------------------ containerd store
def containerd(out, ref_dir):
    blobs = Blobs()
    layers = [L1, L2]
    gzl = [gz(l) for l in layers]
    for l in gzl:
        blobs.add(l)
    cfg = config([sha(l) for l in layers])
    blobs.add(cfg)
    m = manifest(cfg, gzl, MT_TGZ)
    blobs.add(m)
    nested = cjson({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
        desc(MT_MANIFEST, m, platform={"architecture": "amd64", "os": "linux"}),
        attestation(blobs, m)]})
    blobs.add(nested)
    index = cjson({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
        desc(MT_INDEX, nested, annotations={
            "io.containerd.image.name": "docker.io/flatten-test/spec-containerd:latest",
            "org.opencontainers.image.ref.name": "latest"})]})
    mj = [{"Config": f"blobs/sha256/{sha(cfg)}",
           "RepoTags": ["flatten-test/spec-containerd:latest"],
           "Layers": [f"blobs/sha256/{sha(l)}" for l in gzl]}]
    files = [(f"blobs/sha256/{h}", d) for h, d in sorted(blobs.blobs.items())]
    files += [("index.json", index), ("manifest.json", cjson(mj)),
              ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
    write_tar(os.path.join(out, "containerd.tar"), files, dirs=["blobs/", "blobs/sha256/"])


# ------------------------------------------------------------------ multi-platform
def multi_platform(out, ref_dir):
    blobs = Blobs()
    amd = [L1, L2]
    arm = [L1ARM, L2]
    descs = []
    for layers, arch, variant in ((amd, "amd64", None), (arm, "arm64", "v8")):
        gzl = [gz(l) for l in layers]
        for l in gzl:
            blobs.add(l)
        cfg = config([sha(l) for l in layers], arch=arch, variant=variant)
        blobs.add(cfg)
        m = manifest(cfg, gzl, MT_TGZ)
        blobs.add(m)
        plat = {"architecture": arch, "os": "linux"}
        if variant:
            plat["variant"] = variant
        descs.append(desc(MT_MANIFEST, m, platform=plat))
        if arch == "amd64":
            amd_manifest = m
        ref_layout(ref_dir, f"multi-{arch}", cfg, layers)
    descs.append(attestation(blobs, amd_manifest))
    index = cjson({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": descs})
    write_layout_dir(os.path.join(out, "multi-platform"), blobs.blobs, index)


# ------------------------------------------------------------------ ggcr
def ggcr(out, ref_dir):
    layers = [L1, L2]
    gzl = [gz(l) for l in layers]
    cfg = config([sha(l) for l in layers])
    mj = [{"Config": "sha256:" + sha(cfg),
           "RepoTags": ["index.docker.io/flatten-test/spec-ggcr:latest"],
           "Layers": [f"{sha(l)}.tar.gz" for l in gzl]}]
    files = [("sha256:" + sha(cfg), cfg)] + [(f"{sha(l)}.tar.gz", l) for l in gzl]
    files.append(("manifest.json", cjson(mj)))
    write_tar(os.path.join(out, "ggcr.tar"), files)


def main():
    out, ref_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    os.makedirs(ref_dir, exist_ok=True)
    docker25(out, ref_dir)
    containerd(out, ref_dir)
    multi_platform(out, ref_dir)
    ggcr(out, ref_dir)


if __name__ == "__main__":
    main()
