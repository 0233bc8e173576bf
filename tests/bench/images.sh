#!/bin/bash
# Build the images for the flatten benchmark (tests/bench/run.sh) into a cache dir.
#
#   bash tests/bench/images.sh && bash tests/bench/run.sh
#
# Run as root on Debian 12 with a reachable Debian mirror (the one this machine's apt
# uses is reused; override with MIRROR=URL). The images are not committed: they are
# hundreds of MB, and this script makes them again the same way. It is idempotent: an
# image whose directory is complete is skipped (delete it to rebuild it).
#
# Output, under $BENCH_DIR (default /var/tmp/flatten-bench):
#   images/<name>/umoci/               umoci's own OCI layout (gzip layers), ref "latest"
#   images/<name>/docker-archive.tar   `skopeo copy` to docker-archive: plain tar layers
#   images/<name>/oci-plain/           OCI layout, the same plain tar layers (for umoci),
#                                      media type application/vnd.oci.image.layer.v1.tar
#   images/<name>/oci-gzip/            OCI layout, gzip layers (skopeo), ref "latest"
#   images/<name>/final.tar            the final tree: `umoci raw unpack` of oci-gzip,
#                                      re-tarred by GNU tar (pax, numeric owners, xattrs)
#   images/<name>/layers.md            entries and bytes of each layer (measure.py describe)
#   images/<name>/BUILD-INFO.txt       tool versions, build time, packages
#
# Images (every layer made with umoci unpack / modify the rootfs / umoci repack, so the
# whiteouts are umoci's directory diff, except churn's opaque layer):
#   debian  1 `mmdebstrap --variant=minbase bookworm`
#           2 `apt-get install` in a chroot of $DEBIAN_PACKAGES, lists and cache cleaned
#           3 rm -rf /usr/share/doc /usr/share/man /usr/share/locale
#           4 a small config change: /etc/hostname, a new file in /etc
#   churn   1 $CHURN_FILES files (default 2000) totalling $CHURN_MB MB (default 400) in
#             20 top dirs x 5 subdirs, log-normal sizes, seeded (python random): 3/4 of
#             the files are word-salad text (gzips to about 1/3), 1/4 random bytes
#           2 deletes about 20% of the bytes: 2 whole top dirs, 2 whole subdirs and
#             single files (umoci writes one .wh. entry per deleted file or dir)
#           3 rewrites about 25% of the bytes: new content, same size, same paths
#           4 a small dir over /t07 with an opaque whiteout (about 5% of the bytes
#             hidden, some of them just rewritten by layer 3); written by GNU tar and
#             added with `umoci raw add-layer` (umoci insert --opaque writes a broken tar)
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/var/tmp/flatten-bench}
IMAGES=$BENCH_DIR/images
WORK=$BENCH_DIR/work
HERE=$(cd "$(dirname "$0")" && pwd)
DEBIAN_PACKAGES=${DEBIAN_PACKAGES:-"perl python3 ca-certificates curl git"}
CHURN_MB=${CHURN_MB:-400}
CHURN_FILES=${CHURN_FILES:-2000}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

log() { printf '[images %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (umoci, mmdebstrap and chroot need it)"

# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list).
host_mirror() {
    {
        grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true
        grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
            sed 's/\[[^]]*\]//' | awk '{print $2}' || true
    } | grep -E '/debian/?$' | head -n1 || true
}
MIRROR=${MIRROR:-$(host_mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

need_tools() {
    local missing=()
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v umoci >/dev/null || missing+=(umoci)
    command -v skopeo >/dev/null || missing+=(skopeo)
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v igzip >/dev/null || missing+=(isal)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v strace >/dev/null || missing+=(strace)
    [ -x /usr/bin/time ] || missing+=(time)
    command -v python3 >/dev/null || missing+=(python3)
    command -v gzip >/dev/null || missing+=(gzip)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    fi
}

# skopeo wants a signature policy; everything here is local, accept anything.
POLICY=$WORK/policy.json
sk() { skopeo --policy "$POLICY" "$@"; }

# Give every path changed since the last mark the mtime of layer N (reproducible, and
# distinct per layer). Only for the churn image: debian keeps the packages' mtimes.
mark() { touch "$WORK/marker"; sleep 1; }
stamp() { find "$1" -cnewer "$WORK/marker" -exec touch -h -d "@$((SOURCE_DATE_EPOCH + $2 * 86400))" {} +; }

repack() { # repack LAYOUT BUNDLE WHAT
    umoci repack --refresh-bundle --history.created "$CREATED" \
        --history.created_by "tests/bench/images.sh: $3" --image "$1:latest" "$2"
}

new_image() { # new_image LAYOUT BUNDLE
    umoci init --layout "$1"
    umoci new --image "$1:latest"
    umoci config --image "$1:latest" --created "$CREATED" --author flatten-bench \
        --config.cmd /bin/sh --history.created "$CREATED"
    umoci unpack --image "$1:latest" "$2" >/dev/null
}

# Exports, final tree, description; then mark the image complete.
export_image() { # export_image NAME
    local name=$1 out=$IMAGES/$1 w=$WORK/$1
    log "$name: exports"
    umoci gc --layout "$out/umoci"
    sk copy -q "oci:$out/umoci:latest" "docker-archive:$out/docker-archive.tar:bench/$name:latest"
    # skopeo 1.9.3 copying docker-archive: to oci: with --dest-oci-accept-uncompressed-layers
    # keeps the plain blobs but labels them tar+gzip (umoci then fails); through dir:
    # with --dest-decompress the media types come out right (and the blobs are the same).
    rm -rf "$w/dir"
    sk copy -q --dest-decompress "oci:$out/umoci:latest" "dir:$w/dir"
    sk copy -q --dest-oci-accept-uncompressed-layers "dir:$w/dir" "oci:$out/oci-plain:latest"
    rm -rf "$w/dir"
    sk copy -q --dest-compress --dest-compress-format gzip \
        "docker-archive:$out/docker-archive.tar" "oci:$out/oci-gzip:latest"
    python3 "$HERE/measure.py" check-compression "$out/docker-archive.tar" plain
    python3 "$HERE/measure.py" check-compression "$out/oci-plain" plain
    python3 "$HERE/measure.py" check-compression "$out/oci-gzip" gzip

    log "$name: final tree (umoci raw unpack + GNU tar)"
    rm -rf "$w/final"
    umoci raw unpack --image "$out/oci-gzip:latest" "$w/final" >/dev/null
    tar -C "$w/final" --sort=name --numeric-owner --xattrs --xattrs-include='*' \
        --format=posix --pax-option=delete=atime,delete=ctime -cf "$out/final.tar" .
    rm -rf "$w/final"

    log "$name: describing layers"
    python3 "$HERE/measure.py" describe "$out" >"$out/layers.md"
}

build_debian() {
    local out=$IMAGES/debian w=$WORK/debian
    local L=$out/umoci B=$w/bundle R=$w/bundle/rootfs
    log "debian: layer 1, mmdebstrap minbase bookworm from $MIRROR"
    new_image "$L" "$B"
    mmdebstrap --quiet --mode=root --variant=minbase bookworm "$R" "$MIRROR"
    repack "$L" "$B" "mmdebstrap --variant=minbase bookworm"

    log "debian: layer 2, apt-get install $DEBIAN_PACKAGES"
    mount -t proc proc "$R/proc"
    # shellcheck disable=SC2086
    if ! chroot "$R" /usr/bin/env DEBIAN_FRONTEND=noninteractive /bin/sh -ec "
            apt-get update -q
            apt-get install -y -q --no-install-recommends $DEBIAN_PACKAGES
            apt-get clean
            rm -rf /var/lib/apt/lists/*" >"$w/apt.log" 2>&1; then
        umount "$R/proc"; tail -n 20 "$w/apt.log" >&2; die "apt-get in the chroot failed"
    fi
    umount "$R/proc"
    repack "$L" "$B" "apt-get install $DEBIAN_PACKAGES"

    log "debian: layer 3, rm -rf /usr/share/{doc,man,locale}"
    rm -rf "$R/usr/share/doc" "$R/usr/share/man" "$R/usr/share/locale"
    repack "$L" "$B" "rm -rf /usr/share/doc /usr/share/man /usr/share/locale"

    log "debian: layer 4, config"
    echo bench >"$R/etc/hostname"
    printf '# flatten benchmark\nkey=value\n' >"$R/etc/flatten-bench.conf"
    repack "$L" "$B" "config: /etc/hostname, /etc/flatten-bench.conf"

    chroot "$R" dpkg-query -W -f '${Package} ${Version}\n' >"$w/packages.txt"
    export_image debian
    {
        echo "made by: tests/bench/images.sh"
        echo "mirror: $MIRROR"
        echo "extra packages (layer 2): $DEBIAN_PACKAGES"
        echo "mmdebstrap: $(mmdebstrap --version)"
        echo "umoci: $(umoci --version)"
        echo "skopeo: $(skopeo --version)"
        echo "packages in the final tree:"
        sed 's/^/  /' "$w/packages.txt"
    } >"$out/BUILD-INFO.txt"
}

# The churn image's data, all from python's random with fixed seeds.
churn_py() { python3 - "$@" <<'EOF'
import math, os, random, sys

step, root = sys.argv[1], sys.argv[2]
MB = 1 << 20
TOTAL = int(os.environ.get("CHURN_MB", "400")) * MB
NFILES = int(os.environ.get("CHURN_FILES", "2000"))

def text_pool(rng):
    """About 8 MB of word salad: Zipf-distributed words, lines of ~12 words."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    freq = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4,
            2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1]
    vocab = ["".join(rng.choices(letters, freq, k=rng.randint(1, 11))) for _ in range(8000)]
    zipf = [1.0 / (i + 1) for i in range(len(vocab))]
    words = rng.choices(vocab, zipf, k=1_400_000)
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    return ("\n".join(lines) + "\n").encode()

def content(rng, pool, size, binary):
    if binary:
        return rng.randbytes(size)
    parts, left = [], size
    while left > 0:   # slices of the pool at random offsets, beyond gzip's 32 KB window
        n = min(left, rng.randint(32 << 10, 256 << 10))
        off = rng.randrange(0, len(pool) - n)
        parts.append(pool[off:off + n])
        left -= n
    return b"".join(parts)

def files(root):
    out = []
    for d, dirs, names in os.walk(root):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(d, n)
            if not os.path.islink(p):
                out.append((os.path.relpath(p, root), os.path.getsize(p)))
    return out

if step == "base":
    rng = random.Random(20240601)
    pool = text_pool(rng)
    dirs = []
    for t in range(20):
        dirs.append(f"t{t:02d}")
        dirs += [f"t{t:02d}/s{s}" for s in range(5)]
    raw = [rng.lognormvariate(0, 1.5) for _ in range(NFILES)]
    scale = TOTAL / sum(raw)
    sizes = [int(r * scale) for r in raw]
    sizes[0] += TOTAL - sum(sizes)
    for i, size in enumerate(sizes):
        binary = rng.random() < 0.25
        if i % 97 == 0:
            size = 0   # a few empty files
        d = rng.choice(dirs)
        path = os.path.join(root, d, f"f{i:04d}.{'bin' if binary else 'txt'}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content(rng, pool, size, binary))
        if i % 10 == 0:
            os.chmod(path, 0o755)
    for i in range(50):   # some symlinks
        os.symlink(f"../s{i % 5}", os.path.join(root, dirs[(i * 7) % len(dirs)], f"link{i}"))
elif step == "delete":
    rng = random.Random(20240602)
    all_files = files(root)
    total = sum(s for _, s in all_files)
    gone = 0
    for d in ("t03", "t11", "t05/s2", "t16/s4"):   # whole dirs
        gone += sum(s for p, s in all_files if p.startswith(d + "/"))
        os.system(f"rm -rf '{os.path.join(root, d)}'")
    rest = [f for f in files(root) if not f[0].startswith("t07/")]
    rng.shuffle(rest)
    for p, s in rest:   # single files, t07 is left for the opaque layer
        if gone >= 0.20 * total:
            break
        os.unlink(os.path.join(root, p))
        gone += s
    print(f"deleted {gone / MB:.0f} MB of {total / MB:.0f} MB", file=sys.stderr)
elif step == "rewrite":
    rng = random.Random(20240603)
    pool = text_pool(random.Random(20240604))
    rest = [f for f in files(root) if f[1] > 0]
    rng.shuffle(rest)
    done = 0
    for p, s in rest:
        if done >= 0.25 * TOTAL:
            break
        with open(os.path.join(root, p), "wb") as f:
            f.write(content(rng, pool, s, p.endswith(".bin")))
        done += s
    print(f"rewrote {done / MB:.0f} MB", file=sys.stderr)
elif step == "opaque":
    rng = random.Random(20240605)
    os.makedirs(os.path.join(root, "s9"))
    for i in range(20):
        with open(os.path.join(root, "s9" if i % 2 else "", f"new{i:02d}.txt"), "w") as f:
            f.write(f"opaque replacement {i}\n" * rng.randint(1, 500))
else:
    sys.exit(f"unknown step {step}")
EOF
}

build_churn() {
    local out=$IMAGES/churn w=$WORK/churn
    local L=$out/umoci B=$w/bundle R=$w/bundle/rootfs
    export CHURN_MB CHURN_FILES
    log "churn: layer 1, $CHURN_FILES files, $CHURN_MB MB"
    new_image "$L" "$B"
    mark; churn_py base "$R"; stamp "$R" 1
    repack "$L" "$B" "churn base: $CHURN_FILES files, $CHURN_MB MB"

    log "churn: layer 2, deletions"
    mark; churn_py delete "$R"; stamp "$R" 2
    repack "$L" "$B" "churn: delete about 20% of the bytes"

    log "churn: layer 3, rewrites"
    mark; churn_py rewrite "$R"; stamp "$R" 3
    repack "$L" "$B" "churn: rewrite about 25% of the bytes"

    # Not `umoci insert --opaque`: umoci 0.4.7's insert writes a truncated tar (no
    # padding after the last file, no end-of-archive blocks), which GNU tar and flatten
    # reject. So the layer is written by GNU tar and added verbatim, as testdata does.
    log "churn: layer 4, opaque /t07 (GNU tar + umoci raw add-layer)"
    rm -rf "$w/opaque"; mkdir -p "$w/opaque/t07"
    churn_py opaque "$w/opaque/t07"
    : >"$w/opaque/t07/.wh..wh..opq"
    find "$w/opaque" -exec touch -h -d "@$((SOURCE_DATE_EPOCH + 4 * 86400))" {} +
    tar -C "$w/opaque" --sort=name --numeric-owner --owner=0 --group=0 --format=posix \
        --pax-option=delete=atime,delete=ctime -cf "$w/opaque.tar" t07
    umoci raw add-layer --image "$L:latest" --history.created "$CREATED" \
        --history.created_by "tests/bench/images.sh: churn: opaque /t07" "$w/opaque.tar"

    export_image churn
    {
        echo "made by: tests/bench/images.sh"
        echo "CHURN_MB=$CHURN_MB CHURN_FILES=$CHURN_FILES SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
        echo "umoci: $(umoci --version)"
        echo "skopeo: $(skopeo --version)"
    } >"$out/BUILD-INFO.txt"
}

need_tools
mkdir -p "$IMAGES" "$WORK"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$POLICY"

for name in ${BENCH_IMAGES:-debian churn}; do
    if [ -f "$IMAGES/$name/.complete" ]; then
        log "$name: already built ($IMAGES/$name), skipped"
        continue
    fi
    start=$SECONDS
    # Leftovers of an interrupted build: a proc mount in the chroot, partial dirs.
    if mountpoint -q "$WORK/$name/bundle/rootfs/proc" 2>/dev/null; then
        umount "$WORK/$name/bundle/rootfs/proc"
    fi
    rm -rf "${IMAGES:?}/$name" "${WORK:?}/$name"
    mkdir -p "$IMAGES/$name" "$WORK/$name"
    case $name in
        debian) build_debian ;;
        churn) build_churn ;;
        *) die "unknown image $name (known: debian churn)" ;;
    esac
    echo "build time: $((SECONDS - start)) s" >>"$IMAGES/$name/BUILD-INFO.txt"
    rm -rf "${WORK:?}/$name"
    touch "$IMAGES/$name/.complete"
    log "$name: done in $((SECONDS - start)) s"
done
log "images in $IMAGES"
