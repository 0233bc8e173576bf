#!/bin/bash
# Write the spec-built archives (spec.py) and, as the expected root
# filesystems, umoci's unpack of the same layers from a plain OCI layout:
#   spec/docker25.tar, spec/containerd.tar, spec/multi-platform/, spec/ggcr.tar
#   spec/<image>.umoci-rootfs.tar   spec-a, spec-b, multi-amd64, multi-arm64
#   spec/layers.txt
# spec-a's rootfs is also the expected result of containerd.tar, ggcr.tar and
# the linux/amd64 entry of multi-platform/ (same layers, gzip-compressed).
# Run as root on Debian: bash testdata/make/spec.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
install_tools umoci python3

OUT=$TESTDATA/spec
rm -rf "$OUT" "$WORK/spec-ref"; mkdir -p "$OUT"
python3 "$MAKE_DIR/spec.py" "$OUT" "$WORK/spec-ref"
for name in spec-a spec-b multi-amd64 multi-arm64; do
    rf=$WORK/spec-rootfs-$name; rm -rf "$rf"
    umoci raw unpack --image "$WORK/spec-ref/$name:ref" "$rf" 2>/dev/null
    det_tar "$rf" "$OUT/$name.umoci-rootfs.tar"
done
{
    echo "######## docker25.tar (manifest.json view)"; python3 "$MAKE_DIR/describe.py" docker-save "$OUT/docker25.tar"
    echo "######## docker25.tar (index.json view)"; python3 "$MAKE_DIR/describe.py" oci-archive "$OUT/docker25.tar"
    echo "######## containerd.tar (manifest.json view)"; python3 "$MAKE_DIR/describe.py" docker-save "$OUT/containerd.tar"
    echo "######## containerd.tar (index.json view)"; python3 "$MAKE_DIR/describe.py" oci-archive "$OUT/containerd.tar"
    echo "######## multi-platform/"; python3 "$MAKE_DIR/describe.py" oci-dir "$OUT/multi-platform"
    echo "######## ggcr.tar"; python3 "$MAKE_DIR/describe.py" docker-save "$OUT/ggcr.tar"
} >"$OUT/layers.txt"
chmod -R u+rwX,go+rX,go-w "$OUT"
log "spec done"
