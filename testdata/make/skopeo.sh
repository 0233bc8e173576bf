#!/bin/bash
# Convert the Docker-built images (docker/cases.tar, made by docker.sh) with
# skopeo into the other formats flatten reads:
#   skopeo/oci-layout/                     OCI layout dir, every case; skopeo gzips the
#                                          layers by default; ref names are the case
#                                          names, plus "latest" = whiteout-file
#   skopeo/oci-uncompressed/               OCI layout dir, whiteout-file, plain tar layers
#   skopeo/oci-zstd/                       OCI layout dir, whiteout-file, zstd layers
#   skopeo/whiteout-file.oci-archive.tar   oci-archive (tar of a layout), gzip layers
#   skopeo/whiteout-file.docker-archive.tar docker-archive as skopeo/podman write it
#   skopeo/layers.txt                      listing of all of the above
# The expected rootfs of each image is docker/<case>.export.tar.
# Run as root on Debian: bash testdata/make/skopeo.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
install_tools skopeo zstd python3

SRC=$TESTDATA/docker/cases.tar
[ -f "$SRC" ] || die "run docker.sh first ($SRC missing)"
OUT=$TESTDATA/skopeo
rm -rf "$OUT"; mkdir -p "$OUT"
# skopeo wants a policy; the archives are local, accept anything.
POLICY=$WORK/policy.json
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$POLICY"
sk() { skopeo --policy "$POLICY" "$@"; }

cases=$(python3 -c 'import json,sys,tarfile
m=json.load(tarfile.open(sys.argv[1]).extractfile("manifest.json"))
print(" ".join(sorted(t.split("/",1)[1].split(":")[0] for i in m for t in i["RepoTags"] if "/base:" not in t)))' "$SRC")

for c in $cases; do
    log "oci-layout:$c"
    sk copy -q "docker-archive:$SRC:flatten-test/$c:latest" "oci:$OUT/oci-layout:$c"
done
sk copy -q "docker-archive:$SRC:flatten-test/whiteout-file:latest" "oci:$OUT/oci-layout:latest"

log "uncompressed / zstd layouts"
# From the single-image save, for the same symlink reason as below ("Size
# mismatch ... expected 0" when the layer is kept as it is).
sk copy -q --dest-oci-accept-uncompressed-layers \
    "docker-archive:$TESTDATA/docker/whiteout-file.tar" "oci:$OUT/oci-uncompressed:whiteout-file"
sk copy -q --dest-compress --dest-compress-format zstd \
    "docker-archive:$SRC:flatten-test/whiteout-file:latest" "oci:$OUT/oci-zstd:whiteout-file"

log "oci-archive / docker-archive"
sk copy -q --dest-compress --dest-compress-format gzip \
    "docker-archive:$SRC:flatten-test/whiteout-file:latest" \
    "oci-archive:$OUT/whiteout-file.oci-archive.tar:whiteout-file"
# Source is the single-image save: skopeo 1.9.3 fails with "archive/tar: write
# too long" when docker-archive -> docker-archive reads a layer whose
# <id>/layer.tar is one of Docker's symlinks (as in cases.tar).
sk copy -q "docker-archive:$TESTDATA/docker/whiteout-file.tar" \
    "docker-archive:$OUT/whiteout-file.docker-archive.tar:flatten-test/whiteout-file:latest"

{
    for d in oci-layout oci-uncompressed oci-zstd; do
        echo "######## $d/"; python3 "$MAKE_DIR/describe.py" oci-dir "$OUT/$d"
    done
    echo "######## whiteout-file.oci-archive.tar"
    python3 "$MAKE_DIR/describe.py" oci-archive "$OUT/whiteout-file.oci-archive.tar"
    echo "######## whiteout-file.docker-archive.tar"
    python3 "$MAKE_DIR/describe.py" docker-save "$OUT/whiteout-file.docker-archive.tar"
} >"$OUT/layers.txt"

{
    echo "made by: testdata/make/skopeo.sh from docker/cases.tar"
    echo "skopeo: $(skopeo --version)"
} >"$OUT/BUILD-INFO.txt"
chmod -R u+rwX,go+rX,go-w "$OUT"
log "skopeo done"
