#!/bin/bash
# Small images whose layers use tar forms that real tools write and that a
# reader must decode exactly (see testdata/README.md, "tarforms/"):
#
#   tarforms/xattr-newline.*     PAX SCHILY.xattr.* values holding 0x0a (and 0x00)
#                                bytes: file capabilities, POSIX ACLs, user.bin
#   tarforms/sparse-gnu.*        GNU tar --format=gnu --sparse (typeflag 'S',
#                                with extension headers)
#   tarforms/sparse-pax-0.0.*    GNU tar --format=posix --sparse --sparse-version=0.0
#   tarforms/sparse-pax-0.1.*    ... --sparse-version=0.1
#   tarforms/sparse-pax-1.0.*    ... --sparse-version=1.0
#   tarforms/docker-add-caps.*   docker build (classic builder) of `ADD caps.tar /`
#                                where caps.tar carries capabilities, other xattrs and
#                                a PAX 1.0 sparse file; docker save + docker export
#
# For the GNU tar images (xattr-newline, sparse-*):
#   <name>.layer.tar              the layer exactly as GNU tar wrote it
#   <name>.oci/                   OCI layout (umoci init/new/raw add-layer: gzip), ref <name>
#   <name>.docker-archive.tar     skopeo copy oci:<name>.oci docker-archive: (plain layers)
#   <name>.rootfs.tar             expected root filesystem: GNU tar extracts the layer
#                                 as root, then re-tars it (sorted, pax, xattrs, acls,
#                                 no --sparse). The four sparse-* references are
#                                 byte-identical; sparse-pax-*.rootfs.tar are symlinks
#                                 to sparse-gnu.rootfs.tar.
# For docker-add-caps:
#   docker-add-caps.tar           docker save (legacy layout)
#   docker-add-caps.export.tar    docker export of docker create (expected rootfs)
# And layers.txt (describe.py of every image, rawtar.py of every layer) and
# BUILD-INFO.txt.
#
# Run as root on Debian 12: bash testdata/make/tarforms.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
install_tools tar libcap2-bin acl attr umoci skopeo docker.io python3 util-linux

PY=/usr/bin/python3        # Debian's, whatever python3 is first in PATH
OUT=$TESTDATA/tarforms
W=$WORK/tarforms
rm -rf "$OUT" "$W"; mkdir -p "$OUT" "$W"
CREATED=2023-11-14T22:13:20Z   # = SOURCE_DATE_EPOCH
PAXOPT=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime
POLICY=$W/policy.json
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$POLICY"
sk() { skopeo --policy "$POLICY" "$@"; }
check() { "$PY" "$MAKE_DIR/treecheck.py" "$@"; }
rawtar() { "$PY" "$MAKE_DIR/rawtar.py" "$@"; }
stamp() { find "$1" -exec touch -h -d @"$SOURCE_DATE_EPOCH" {} +; }
# GNU tar run as PID 1 of a fresh PID namespace: --sparse-version 0.1 and 1.0
# put tar's PID into the member name (%d/GNUSparseFile.%p/%f), so this makes
# the layers byte-identical from run to run (GNUSparseFile.1).
gtar() { unshare --pid --fork tar "$@"; }
# expected rootfs: extract as root keeping everything, then a plain, sorted re-tar
extract() { rm -rf "$2"; mkdir -p "$2"
    tar -x --xattrs --xattrs-include='*' --acls --same-owner -p --numeric-owner -C "$2" -f "$1"; }
ref_tar() { tar --sort=name --numeric-owner --xattrs --xattrs-include='*' --acls \
    --format=pax --pax-option="$PAXOPT" -C "$1" -cf "$2" .; }
# put FILE OFFSET STRING: write STRING at byte OFFSET of FILE without truncating it
put() { printf '%s' "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
need_0a() { # FILE XATTR: the value must hold a 0x0a byte
    "$PY" -c 'import os,sys; v=os.getxattr(sys.argv[1],sys.argv[2],follow_symlinks=False); sys.exit(0 if b"\n" in v else "no 0a byte in %s of %s: %s" % (sys.argv[2], sys.argv[1], v.hex()))' "$1" "$2"
}

# wrap NAME: <name>.layer.tar (already in $OUT) -> OCI layout, docker-archive,
# reference rootfs; then cross-check everything.
wrap() {
    local name=$1 layer=$OUT/$1.layer.tar L=$OUT/$1.oci
    log "wrap $name"
    umoci init --layout "$L"
    umoci new --image "$L:$name"
    umoci config --image "$L:$name" --created "$CREATED" --author flatten-testdata \
        --config.cmd /bin/sh --history.created "$CREATED" \
        --history.created_by "testdata/make/tarforms.sh: config"
    umoci raw add-layer --image "$L:$name" --history.created "$CREATED" \
        --history.created_by "testdata/make/tarforms.sh: $name.layer.tar (GNU tar)" "$layer"
    umoci gc --layout "$L"
    sk copy -q "oci:$L:$name" "docker-archive:$OUT/$name.docker-archive.tar:flatten-test/$name:latest"

    # reference: GNU tar's own extraction, re-tarred without --sparse
    extract "$layer" "$W/ref-$name"
    ref_tar "$W/ref-$name" "$OUT/$name.rootfs.tar"

    # cross-checks: the layer inside both images is GNU tar's file byte for byte;
    # umoci (Go archive/tar) unpacks the same tree; Python's tarfile reads the
    # same contents and xattrs
    "$PY" - "$layer" "$L" "$OUT/$name.docker-archive.tar" <<'EOF'
import gzip, hashlib, json, os, sys, tarfile
layer, layout, darch = sys.argv[1:]
want = hashlib.sha256(open(layer, "rb").read()).hexdigest()
idx = json.load(open(os.path.join(layout, "index.json")))
man = json.load(open(os.path.join(layout, "blobs/sha256", idx["manifests"][0]["digest"][7:])))
(l,) = man["layers"]
blob = open(os.path.join(layout, "blobs/sha256", l["digest"][7:]), "rb").read()
assert blob[:2] == b"\x1f\x8b", "umoci layer not gzip"
assert hashlib.sha256(gzip.decompress(blob)).hexdigest() == want, "OCI layer != GNU tar layer"
print(f"oci: {l['mediaType']}, gzip of the GNU tar layer (sha256 {want[:12]})")
with tarfile.open(darch) as tf:
    (img,) = json.load(tf.extractfile("manifest.json"))
    (lname,) = img["Layers"]
    data = tf.extractfile(lname).read()
comp = {b"\x1f\x8b": "gzip", b"\x28\xb5": "zstd"}.get(data[:2], "none")
assert comp == "none", f"docker-archive layer compressed: {comp}"
assert hashlib.sha256(data).hexdigest() == want, "docker-archive layer != GNU tar layer"
print(f"docker-archive: {lname} plain, the GNU tar layer byte for byte")
EOF
    check tarfile "$layer" "$W/ref-$name" >"$W/tarfile-$name.txt" || { cat "$W/tarfile-$name.txt" >&2; die "tarfile view of $name differs from GNU tar"; }
    cat "$W/tarfile-$name.txt" >>"$W/tarfile-results.txt"
    rm -rf "$W/umoci-$name"
    if umoci raw unpack --image "$L:$name" "$W/umoci-$name" 2>"$W/umoci-$name.log"; then
        check tree "$W/ref-$name" "$W/umoci-$name" || die "umoci unpack of $name differs from GNU tar"
        echo "$name: umoci raw unpack gives the same tree as GNU tar" >>"$W/umoci-results.txt"
    else
        # umoci 0.4.7 (Go archive/tar) has no case for the old GNU typeflag 'S'
        [ "$name" = sparse-gnu ] || { cat "$W/umoci-$name.log" >&2; die "umoci raw unpack $name failed"; }
        echo "$name: umoci raw unpack FAILS: $(grep -o 'unknown typeflag.*' "$W/umoci-$name.log" | head -1)" >>"$W/umoci-results.txt"
    fi
}

# ================================================================ xattr-newline
log "xattr-newline"
X=$W/tree-xattr-newline
rm -rf "$X"; mkdir -p "$X/x"
printf 'caps 1\n' >"$X/x/cap-dac-override-fowner"
printf 'caps 2\n' >"$X/x/cap-linux-immutable-net-broadcast"
chmod 0755 "$X/x/cap-dac-override-fowner" "$X/x/cap-linux-immutable-net-broadcast"
setcap cap_dac_override,cap_fowner+ep "$X/x/cap-dac-override-fowner"
setcap cap_linux_immutable,cap_net_broadcast+eip "$X/x/cap-linux-immutable-net-broadcast"
printf 'acl\n' >"$X/x/acl-u10-g10"
setfacl -m u:10:rwx,g:10:r "$X/x/acl-u10-g10"
mkdir "$X/x/default-acl-dir"
setfacl -d -m u:10:rwx,g:10:r "$X/x/default-acl-dir"
printf 'user.bin\n' >"$X/x/user-bin"
setfattr -n user.bin -v 0x610a00620a "$X/x/user-bin"
printf 'plain\n' >"$X/x/plain"
need_0a "$X/x/cap-dac-override-fowner" security.capability
need_0a "$X/x/cap-linux-immutable-net-broadcast" security.capability
need_0a "$X/x/acl-u10-g10" system.posix_acl_access
need_0a "$X/x/default-acl-dir" system.posix_acl_default
need_0a "$X/x/user-bin" user.bin
stamp "$X"
getfattr -R -h -d -m - -e hex "$X" | sed "s|$X|.|" >"$W/xattr-newline.getfattr"
gtar --xattrs --xattrs-include='*' --acls --format=posix --numeric-owner \
    --sort=name --pax-option="$PAXOPT" -C "$X" -cf "$OUT/xattr-newline.layer.tar" .
rawtar "$OUT/xattr-newline.layer.tar" >"$W/xattr-newline.raw"
grep -q 'SCHILY.xattr.security.capability=.*\\n' "$W/xattr-newline.raw" || die "no 0a in capability record"
grep -q 'SCHILY.xattr.user.bin=a\\n\\x00b\\n' "$W/xattr-newline.raw" || die "user.bin record"
grep -q 'SCHILY.xattr.system.posix_acl_access=' "$W/xattr-newline.raw" || die "no ACL xattr record"
grep -q 'SCHILY.xattr.system.posix_acl_default=' "$W/xattr-newline.raw" || die "no default ACL xattr record"
grep -q 'SCHILY.acl.access=' "$W/xattr-newline.raw" || die "no SCHILY.acl.access record"
wrap xattr-newline
# the extracted reference must still carry every value
check xattrs "$W/ref-xattr-newline" >"$W/ref-xattr-newline.xattrs"
for a in 'x/cap-dac-override-fowner: security.capability=0x010000020a000000000000000000000000000000' \
         'x/cap-linux-immutable-net-broadcast: security.capability=0x01000002000a0000000a00000000000000000000' \
         'x/user-bin: user.bin=0x610a00620a' \
         'x/acl-u10-g10: system.posix_acl_access=' 'x/default-acl-dir: system.posix_acl_default='; do
    grep -qF "$a" "$W/ref-xattr-newline.xattrs" || die "reference lacks $a"
done

# ================================================================ sparse-*
log "sparse tree"
S=$W/tree-sparse
rm -rf "$S"; mkdir -p "$S/sparse"
LONGDIR=dir-with-a-long-name-0123456789-0123456789-0123456789
LONGFILE=sparse-file-whose-name-alone-is-longer-than-one-hundred-bytes-so-every-form-needs-its-long-name-handling
mkdir "$S/sparse/$LONGDIR"
# data at 0, hole, data at the unaligned offset 20001, hole, data at 40 KiB, hole to the end
f=$S/sparse/holes; truncate -s 64K "$f"
put "$f" 0 'START-OF-FILE'; put "$f" 20001 'MIDDLE-AT-20001'; put "$f" 40960 'AT-40KiB'
# 60 data segments of one 512-byte block each, a 512-byte hole after each and
# a hole to the end: 61 map entries (old GNU: 4 in the header + 21 + 21 + 15 in
# three extension blocks; PAX 0.1: a 614-byte GNU.sparse.map record; PAX 1.0:
# a map that spans two blocks)
f=$S/sparse/many-segments; truncate -s 64K "$f"
for i in $(seq 0 59); do put "$f" $((i * 1024 + i * 3)) "$(printf 'segment-%02d' "$i")"; done
# only a hole
truncate -s 16K "$S/sparse/empty"
# ends in data, at an unaligned size: the last data segment runs to EOF
f=$S/sparse/tail-data; truncate -s 12291 "$f"; put "$f" 12280 'END-OF-FILE'
# long name
f=$S/sparse/$LONGDIR/$LONGFILE; truncate -s 16K "$f"; put "$f" 12345 'long-name-data'
printf 'not sparse\n' >"$S/sparse/plain"
stamp "$S"
check sparse "$S" >"$W/sparse-alloc.txt"
"$PY" - "$S" <<'EOF' || die "the sparse files are not sparse on this filesystem ($WORK)"
import os, sys
for dp, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        st = os.stat(os.path.join(dp, f))
        if f != "plain" and st.st_blocks * 512 >= st.st_size:
            sys.exit(f"{f}: {st.st_blocks * 512} bytes allocated of {st.st_size}")
EOF

# --hole-detection=raw: GNU tar finds the holes by reading 512-byte blocks
# instead of asking the filesystem (SEEK_HOLE, 4 KiB blocks on ext4), so the
# 60-segment file costs 60 x 512 bytes of data per layer instead of 60 x 4 KiB
# and the middle segment of `holes` starts at 19968, not 16384.
mk_sparse() { # NAME TAR-FORMAT-OPTIONS...
    local name=$1; shift
    log "$name"
    gtar "$@" --sparse --hole-detection=raw --numeric-owner --sort=name -C "$S" -cf "$OUT/$name.layer.tar" .
    rawtar "$OUT/$name.layer.tar" >"$W/$name.raw"
}
expect() { grep -qE -- "$2" "$W/$1.raw" || die "$1: no '$2' in the raw headers"; }
reject() { if grep -qE -- "$2" "$W/$1.raw"; then die "$1: unexpected '$2'"; fi; }

mk_sparse sparse-gnu --format=gnu
expect sparse-gnu ' type=S gnu .* name=./sparse/holes$'
expect sparse-gnu 'old GNU sparse: realsize=65536 isextended=1 '
[ "$(grep -c 'extension block: 21 entries isextended=1' "$W/sparse-gnu.raw")" = 2 ] || die "sparse-gnu: not two full extension blocks"
expect sparse-gnu 'extension block: 15 entries isextended=0'
expect sparse-gnu ' type=L gnu .*name=././@LongLink'
reject sparse-gnu ' type=x '

mk_sparse sparse-pax-0.0 --format=posix --pax-option="$PAXOPT" --sparse-version=0.0
expect sparse-pax-0.0 '^ +GNU.sparse.offset=19968$'
expect sparse-pax-0.0 '^ +GNU.sparse.numbytes='
expect sparse-pax-0.0 '^ +GNU.sparse.numblocks=61$'
expect sparse-pax-0.0 "^ +path=./sparse/$LONGDIR/$LONGFILE\$"
reject sparse-pax-0.0 'GNU.sparse.map=|GNU.sparse.major|GNUSparseFile'

mk_sparse sparse-pax-0.1 --format=posix --pax-option="$PAXOPT" --sparse-version=0.1
expect sparse-pax-0.1 '^ +GNU.sparse.map=0,512,19968,512,40960,512,65536,0$'
expect sparse-pax-0.1 "^ +GNU.sparse.name=./sparse/$LONGDIR/$LONGFILE\$"
expect sparse-pax-0.1 'name=./sparse/GNUSparseFile.1/holes$'
reject sparse-pax-0.1 'GNU.sparse.offset|GNU.sparse.major'

mk_sparse sparse-pax-1.0 --format=posix --pax-option="$PAXOPT" --sparse-version=1.0
expect sparse-pax-1.0 '^ +GNU.sparse.major=1$'
expect sparse-pax-1.0 '^ +GNU.sparse.minor=0$'
expect sparse-pax-1.0 '^ +GNU.sparse.realsize=65536$'
expect sparse-pax-1.0 'name=./sparse/GNUSparseFile.1/holes$'
expect sparse-pax-1.0 'PAX 1.0 sparse map in data \(512 bytes\): \[\(0, 512\), \(19968, 512\), \(40960, 512\), \(65536, 0\)\]'
expect sparse-pax-1.0 'PAX 1.0 sparse map in data \(1024 bytes\): \[\(0, 512\), \(1024, 512\)'
reject sparse-pax-1.0 'GNU.sparse.map=|GNU.sparse.offset'

for v in gnu pax-0.0 pax-0.1 pax-1.0; do
    wrap "sparse-$v"
    check tree "$S" "$W/ref-sparse-$v" >/dev/null || die "GNU tar's extraction of sparse-$v differs from the source tree"
done
# all four extract to the same tree, so their references are the same bytes:
# keep one, link the others (each is 190 KiB of mostly zeros)
for v in pax-0.0 pax-0.1 pax-1.0; do
    cmp -s "$OUT/sparse-gnu.rootfs.tar" "$OUT/sparse-$v.rootfs.tar" \
        || die "sparse-$v.rootfs.tar differs from sparse-gnu.rootfs.tar"
    ln -sf sparse-gnu.rootfs.tar "$OUT/sparse-$v.rootfs.tar"
done
# GNU tar's extraction recreates the holes
check sparse "$W/ref-sparse-pax-1.0" >"$W/sparse-alloc-extracted.txt"

# ================================================================ docker-add-caps
docker_up "$WORK/tf-docker"

# tiny base: one file, imported
B=$W/docker-base; rm -rf "$B"; mkdir -p "$B"
printf 'tarforms base layer\n' >"$B/base-file"
stamp "$B"
det_tar "$B" "$W/docker-base.tar"
d import --change 'CMD ["/base-file"]' "$W/docker-base.tar" flatten-test/tarforms-base:latest >/dev/null

CTX=$W/docker-ctx; C=$W/tree-caps
rm -rf "$CTX" "$C"; mkdir -p "$CTX" "$C/caps"
printf 'caps 1\n' >"$C/caps/cap-dac-override-fowner"
printf 'caps 2\n' >"$C/caps/cap-linux-immutable-net-broadcast"
chmod 0755 "$C/caps/cap-dac-override-fowner" "$C/caps/cap-linux-immutable-net-broadcast"
setcap cap_dac_override,cap_fowner+ep "$C/caps/cap-dac-override-fowner"
setcap cap_linux_immutable,cap_net_broadcast+eip "$C/caps/cap-linux-immutable-net-broadcast"
printf 'user.bin\n' >"$C/caps/user-bin"
setfattr -n user.bin -v 0x610a00620a "$C/caps/user-bin"
printf 'acl\n' >"$C/caps/acl-u10-g10"
setfacl -m u:10:rwx,g:10:r "$C/caps/acl-u10-g10"
f=$C/caps/sparse-file; truncate -s 32K "$f"; put "$f" 0 'sparse-start'; put "$f" 20001 'sparse-middle'
stamp "$C"
gtar --xattrs --xattrs-include='*' --format=posix --sparse --sparse-version=1.0 \
    --numeric-owner --sort=name --pax-option="$PAXOPT" -C "$C" -cf "$CTX/caps.tar" .
rawtar "$CTX/caps.tar" >"$W/caps.tar.raw"
grep -q 'GNU.sparse.major=1' "$W/caps.tar.raw" || die "caps.tar: sparse file not in PAX 1.0 form"
printf 'FROM flatten-test/tarforms-base\nADD caps.tar /\n' >"$CTX/Dockerfile"
log "docker build docker-add-caps"
d build --network none -q -t flatten-test/docker-add-caps:latest "$CTX" >/dev/null
d save -o "$OUT/docker-add-caps.tar" flatten-test/docker-add-caps:latest
cid=$(d create flatten-test/docker-add-caps:latest)
d export -o "$OUT/docker-add-caps.export.tar" "$cid"
d rm "$cid" >/dev/null
# The image layer as the daemon holds it on disk (overlay2: the layer's diff
# dir, which the daemon made by applying the committed diff tar; the classic
# builder's ADD works in a throw-away RW layer that is gone by now)
U=$(d image inspect -f '{{index .GraphDriver.Data "UpperDir"}}' flatten-test/docker-add-caps:latest 2>/dev/null || true)
if [ -n "$U" ] && [ -d "$U" ]; then
    { check sparse "$U"; check xattrs "$U"; } >"$W/docker-upper.txt"
else
    echo "(no overlay2 diff dir with the $DRIVER driver)" >"$W/docker-upper.txt"
fi
"$PY" - "$OUT/docker-add-caps.tar" "$W/docker-add-caps.top-layer.tar" <<'EOF'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as tf:
    (img,) = json.load(tf.extractfile("manifest.json"))
    open(sys.argv[2], "wb").write(tf.extractfile(img["Layers"][-1]).read())
EOF
rawtar "$W/docker-add-caps.top-layer.tar" >"$W/docker-add-caps.top-layer.raw"
rawtar "$OUT/docker-add-caps.export.tar" >"$W/docker-add-caps.export.raw"
DOCKER_SERVER=$(d version --format '{{.Server.Version}}')
DOCKER_CLIENT=$(d version --format '{{.Client.Version}}')
stop_daemon

# ================================================================ listings
log "layers.txt"
{
    echo "# Made by testdata/make/tarforms.sh. describe.py lists each image as a reader"
    echo "# sees it (Python tarfile: sparse members show their logical size; GNU 'S'"
    echo "# entries print as type '?'); rawtar.py shows the raw headers of each layer."
    for n in xattr-newline sparse-gnu sparse-pax-0.0 sparse-pax-0.1 sparse-pax-1.0; do
        echo; echo "######## $n.oci/ (describe.py oci-dir)"
        "$PY" "$MAKE_DIR/describe.py" oci-dir "$OUT/$n.oci"
        echo "######## $n.docker-archive.tar (describe.py docker-save)"
        "$PY" "$MAKE_DIR/describe.py" docker-save "$OUT/$n.docker-archive.tar"
        echo "######## $n.layer.tar (rawtar.py; the same bytes are the layer of both images)"
        rawtar "$OUT/$n.layer.tar"
    done
    echo; echo "######## xattr-newline: getfattr -R -h -d -m - -e hex of the source tree"
    cat "$W/xattr-newline.getfattr"
    echo "######## umoci raw unpack of each <name>.oci, compared with GNU tar's extraction"
    cat "$W/umoci-results.txt"
    echo "######## Python tarfile read of each <name>.layer.tar, compared with GNU tar's extraction"
    sed "s|$OUT/||; s|$W/||" "$W/tarfile-results.txt"
    echo "######## sparse-*: logical size and allocated bytes of the source tree"
    cat "$W/sparse-alloc.txt"
    echo "######## sparse-*: the same after GNU tar extracted sparse-pax-1.0.layer.tar"
    cat "$W/sparse-alloc-extracted.txt"
    echo; echo "######## docker-add-caps: caps.tar given to ADD (rawtar.py)"
    cat "$W/caps.tar.raw"
    echo "######## docker-add-caps.tar (describe.py docker-save)"
    "$PY" "$MAKE_DIR/describe.py" docker-save "$OUT/docker-add-caps.tar"
    echo "######## docker-add-caps.tar: top (ADD) layer (rawtar.py)"
    cat "$W/docker-add-caps.top-layer.raw"
    echo "######## docker-add-caps: the ADD layer on disk in the daemon (overlay2 diff dir; trusted.overlay.* is overlayfs's own)"
    cat "$W/docker-upper.txt"
    echo "######## docker-add-caps.export.tar (rawtar.py)"
    cat "$W/docker-add-caps.export.raw"
} >"$OUT/layers.txt"

{
    echo "made by: testdata/make/tarforms.sh"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "GNU tar: $(tar --version | head -1)"
    echo "umoci: $(umoci --version)"
    echo "skopeo: $(skopeo --version)"
    echo "docker server: $DOCKER_SERVER"
    echo "docker client: $DOCKER_CLIENT"
    echo "storage driver: $DRIVER"
    echo "builder: classic (DOCKER_BUILDKIT=0)"
    echo "libcap2-bin: $(dpkg-query -W -f '${Version}' libcap2-bin)"
    echo "acl: $(dpkg-query -W -f '${Version}' acl)"
    echo "attr: $(dpkg-query -W -f '${Version}' attr)"
    echo "python3: $("$PY" --version 2>&1)"
    echo "kernel: $(uname -r)"
    echo "work filesystem: $(df --output=fstype "$W" | tail -1)"
} >"$OUT/BUILD-INFO.txt"
chmod -R u+rwX,go+rX,go-w "$OUT"
log "tarforms done: $(du -sh "$OUT" | cut -f1)"
