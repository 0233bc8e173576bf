#!/bin/bash
# Build small OCI images with umoci (no Docker involved) and record umoci's
# own unpacked root filesystem of each as the reference:
#   umoci/layout/                       OCI layout dir, tags below, gzip layers
#   umoci/<tag>.umoci-rootfs.tar        `umoci raw unpack` of the tag, re-tarred with
#                                       GNU tar (--numeric-owner --xattrs, sorted, pax)
#   umoci/layers.txt                    every layer of every tag (tar -tv style)
# Tags:
#   step1     layer 1 only (files, owners, modes, xattrs, hardlinks, devices, symlinks)
#   cases     step1 + layer 2 (deletions, dir rm+recreate, type changes, ...) + layer 3
#   opaque    cases + a hand-written layer (GNU tar) with an opaque whiteout and a
#             whiteout of a directory, added verbatim with `umoci raw add-layer`
# Run as root on Debian: bash testdata/make/umoci.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
install_tools umoci attr libcap2-bin python3

OUT=$TESTDATA/umoci
rm -rf "$OUT"; mkdir -p "$OUT"
L=$OUT/layout
B=$WORK/umoci-bundle
R=$B/rootfs
rm -rf "$B"
CREATED=2023-11-14T22:13:20Z   # = SOURCE_DATE_EPOCH
# Every path changed while building layer N gets mtime SOURCE_DATE_EPOCH + N days,
# so the layers (and umoci's rootfs) carry distinct, reproducible mtimes.
mark() { sleep 1; touch "$WORK/umoci-marker"; sleep 1; }
repack() { # repack N
    find "$R" -cnewer "$WORK/umoci-marker" -exec touch -h -d @$((SOURCE_DATE_EPOCH + $1 * 86400)) {} +
    umoci repack --refresh-bundle --history.created "$CREATED" \
        --history.created_by "testdata/make/umoci.sh: layer $1" --image "$L:cases" "$B"
}

umoci init --layout "$L"
umoci new --image "$L:cases"
umoci config --image "$L:cases" --created "$CREATED" --author flatten-testdata \
    --config.workingdir /srv --config.env FOO=bar --config.user 1000:1000 \
    --config.entrypoint /bin/app --config.cmd serve --config.exposedports 8080/tcp \
    --config.label org.example.case=umoci --history.created "$CREATED"
umoci unpack --image "$L:cases" "$B"

# ---- layer 1
mark
mkdir -p "$R"/w/{gone-dir/sub,recreated/sub,kept,f2d-parent,d2f/c} "$R"/x "$R"/m "$R"/dev-nodes "$R"/l
echo keep >"$R/w/kept/file"; echo gone >"$R/w/gone-file"; echo a >"$R/w/gone-dir/a"; echo b >"$R/w/gone-dir/sub/b"
echo old >"$R/w/recreated/old"; echo old >"$R/w/recreated/sub/old"
echo f >"$R/w/f2d"; echo c >"$R/w/d2f/c/x"
# xattrs
echo x >"$R/x/user"; setfattr -n user.foo -v bar "$R/x/user"; setfattr -n user.empty "$R/x/user"
echo t >"$R/x/trusted"; setfattr -n trusted.foo -v 0sAAEC "$R/x/trusted"   # binary value 00 01 02
mkdir "$R/x/dir-with-xattr"; setfattr -n user.dir -v yes "$R/x/dir-with-xattr"
echo c >"$R/x/cap"; chmod 0755 "$R/x/cap"; setcap cap_net_admin+ep "$R/x/cap"
echo changes >"$R/x/changes-later"; setfattr -n user.state -v before "$R/x/changes-later"
# modes and owners
echo s >"$R/m/setuid"; chmod 4755 "$R/m/setuid"
echo g >"$R/m/setgid"; chmod 2711 "$R/m/setgid"
mkdir "$R/m/sticky"; chmod 1777 "$R/m/sticky"
mkdir "$R/m/d0555"; echo r >"$R/m/d0555/inside"; chmod 0555 "$R/m/d0555"
mkdir "$R/m/d0000"; chmod 0000 "$R/m/d0000"
echo o >"$R/m/owned"; chown 1234:5678 "$R/m/owned"
mkdir "$R/m/owned-dir"; chown 4321:8765 "$R/m/owned-dir"
ln -s owned "$R/m/owned-link"; chown -h 1111:2222 "$R/m/owned-link"
# hardlinks
echo shared >"$R/m/hl-a"; ln "$R/m/hl-a" "$R/m/hl-b"; ln "$R/m/hl-a" "$R/w/hl-c"
echo target >"$R/m/hl-target-deleted"; ln "$R/m/hl-target-deleted" "$R/m/hl-survivor"
# devices and fifo
mknod -m 0666 "$R/dev-nodes/null" c 1 3; mknod -m 0660 "$R/dev-nodes/loop7" b 7 7
mkfifo -m 0600 "$R/dev-nodes/fifo"
# symlinks
ln -s /w/kept/file "$R/l/abs"; ln -s ../w/kept "$R/l/rel-dir"; ln -s missing "$R/l/dangling"
ln -s ../w/d2f "$R/l/to-d2f"
repack 1
umoci tag --image "$L:cases" step1

# ---- layer 2
mark
rm "$R/w/gone-file"; rm -rf "$R/w/gone-dir"
rm -rf "$R/w/recreated"; mkdir -p "$R/w/recreated/newsub"; echo new >"$R/w/recreated/new"
rm "$R/w/f2d"; mkdir "$R/w/f2d"; echo child >"$R/w/f2d/child"
rm -rf "$R/w/d2f"; echo now-a-file >"$R/w/d2f"
rm "$R/m/hl-target-deleted"
setfattr -n user.state -v after "$R/x/changes-later"; setfattr -x user.foo "$R/x/user"
chmod 0640 "$R/m/owned"; chown 99:99 "$R/m/owned-dir"
repack 2

# ---- layer 3: only a deletion of something from layer 1 inside a kept dir
mark
rm "$R/w/kept/file"
repack 3

# ---- hand-written layer added verbatim: opaque dir + dir whiteout
hw=$WORK/umoci-handwritten; rm -rf "$hw"; mkdir -p "$hw/w/recreated" "$hw/m"
: >"$hw/w/recreated/.wh..wh..opq"; echo from-raw-layer >"$hw/w/recreated/only"
: >"$hw/m/.wh.sticky"
find "$hw" -exec touch -h -d @"$SOURCE_DATE_EPOCH" {} +
det_tar "$hw" "$WORK/handwritten.tar"
umoci raw add-layer --image "$L:cases" --tag opaque --history.created "$CREATED" \
    --history.created_by "testdata/make/umoci.sh: hand-written layer (GNU tar)" "$WORK/handwritten.tar"   # umoci gzips it itself
umoci gc --layout "$L"

# ---- references
for t in step1 cases opaque; do
    rf=$WORK/rootfs-$t; rm -rf "$rf"
    umoci raw unpack --image "$L:$t" "$rf"
    det_tar "$rf" "$OUT/$t.umoci-rootfs.tar"
done
python3 "$MAKE_DIR/describe.py" oci-dir "$L" >"$OUT/layers.txt"
{
    echo "made by: testdata/make/umoci.sh"
    echo "umoci: $(umoci --version)"
    echo "tar: $(tar --version | head -1)"
} >"$OUT/BUILD-INFO.txt"
chmod -R u+rwX,go+rX,go-w "$OUT"
log "umoci done"
