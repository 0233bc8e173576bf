#!/bin/bash
# The registry-pull benchmark: how long `flatten docker://…` takes to write an image's
# root filesystem straight from a registry, next to what it replaces: `skopeo copy` of the
# image to an OCI layout, then flatten or umoci on that copy. Goal: the direct pull is
# faster than the copy alone.
#
#   bash tests/bench/images.sh && bash tests/bench/pull.sh
#
# Run as root (it mounts a tmpfs, and flatten/umoci set owners and device nodes). Needs
# Debian's docker-registry, skopeo, umoci, curl, python3 and /usr/bin/time. The images
# come from tests/bench/images.sh, in $BENCH_DIR/images.
#
# It starts one plain-HTTP `docker-registry serve` (distribution 2.8) on 127.0.0.1 (a free
# port; storage in $BENCH_DIR/pull/registry on the disk), and pushes each image's OCI
# layout with gzip layers ($BENCH_DIR/images/<img>/oci-gzip:latest) to
# 127.0.0.1:PORT/<img>:latest with `skopeo copy`; the pushed manifest's digest must be the
# layout's (skopeo pushed the gzip blobs as they are). Then for each image (debian,
# churn) x filesystem (a dir on the disk, $BENCH_DIR/pull/disk, and a tmpfs this script
# mounts at $BENCH_DIR/pull/tmpfs; optionally ext4loop, a new ext4 in a file on the disk,
# loop-mounted), in rounds that interleave the commands (the first round is a warm-up and
# is not counted; before each command the script waits, up to 60 s, until other
# processes leave the CPUs alone; the output tree and the copy are removed after each
# command, untimed):
#   flatten-pull    $FLATTEN -q --tls-verify=false --no-cache docker://REGISTRY/IMG:latest OUT
#                   (no cache: every run fetches every blob)
#   flatten-pull-base  the same with $FLATTEN_BASE, if set
#   skopeo-copy     skopeo copy -q --src-tls-verify=false docker://REGISTRY/IMG:latest
#                   oci:COPYDIR:latest (the copy alone; what the ratios are to)
#   copy+flatten    that copy, then $FLATTEN -q oci:COPYDIR:latest OUT (one shell command)
#   copy+umoci      that copy, then umoci raw unpack --image COPYDIR:latest OUT
#   flatten-cached  $FLATTEN -q --tls-verify=false docker://REGISTRY/IMG:latest OUT with a
#                   warm cache (XDG_CACHE_HOME on the same filesystem, filled by one
#                   untimed run first)
#   flatten-oci     $FLATTEN -q oci:$BENCH_DIR/images/IMG/oci-gzip:latest OUT (the local
#                   layout: what flatten costs without the network)
# OUT and COPYDIR are on the filesystem of the row, and so is TMPDIR (where flatten
# --no-cache spools the blobs it fetches). It reports the median time, the median of the
# per-round ratios to skopeo-copy, CPU time of the command and of the registry meanwhile
# (the registry, skopeo and flatten share the machine's CPUs), peak RSS, /proc/PID/io
# (wchar, write_bytes), and the goal line flatten-pull / skopeo-copy < 1: met / not met
# for each image and filesystem. Timing is measure.py's run_once, as in run.sh.
#
# Then it checks flatten's output once per image (not timed): the trees of a pull with
# --no-cache, of a pull into an empty cache and of a pull from that cache must have no
# `flatten diff` against flatten's tree of the local layout; --no-cache must have left
# nothing in XDG_CACHE_HOME (the script fails otherwise).
#
# Settings (environment):
#   FLATTEN       flatten binary (default: target/release/flatten of this repo); copied
#                 into $BENCH_DIR/pull at start, so a rebuild meanwhile does not change it
#   FLATTEN_LABEL what to call it in the report (e.g. the commit it was built from)
#   FLATTEN_BASE  another flatten binary timed in the same rounds as `flatten-pull-base`
#   RUNS          timed rounds (default 5)
#   BENCH_DIR     cache dir (default /var/tmp/flatten-bench)
#   BENCH_IMAGES  default "debian churn"
#   BENCH_FS      default "disk tmpfs"; also ext4loop;  TMPFS_SIZE default 4g (also
#                 the size of the ext4loop image)
#   BENCH_QUIET   1 (default): wait for quiet CPUs before each command; 0: don't
#   BENCH_SKIP    commands to leave out, comma-separated (e.g. copy+umoci,flatten-oci;
#                 skopeo-copy always runs)
# Output: the markdown on stdout, also in $BENCH_DIR/pull-results-<date>.md (raw numbers
# of every run in pull-results-<date>.json); progress on stderr. Everything else it makes
# ($BENCH_DIR/pull) is removed at exit, and the registry stopped.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/flatten-bench}
BENCH_DIR=$(realpath -m "$BENCH_DIR")
RUNS=${RUNS:-5}
FLATTEN=${FLATTEN:-$REPO/target/release/flatten}
BENCH_IMAGES=${BENCH_IMAGES:-debian churn}
BENCH_FS=${BENCH_FS:-disk tmpfs}
TMPFS_SIZE=${TMPFS_SIZE:-4g}
start=$SECONDS

log() { printf '[pull %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
for t in docker-registry skopeo umoci curl python3; do
    command -v "$t" >/dev/null || die "$t missing (apt-get install docker-registry skopeo umoci curl python3)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"
[ -x "$FLATTEN" ] || die "no flatten binary at $FLATTEN (cargo build --release, or set FLATTEN)"
FLATTEN=$(realpath "$FLATTEN")
if [ -n "${FLATTEN_LABEL:-}" ]; then
    label=$FLATTEN_LABEL
elif [ "$FLATTEN" = "$(realpath -m "$REPO/target/release/flatten")" ]; then
    label="this repo's build ($(date -u -r "$FLATTEN" +%FT%TZ)); work tree at $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')"
else
    label=""
fi
for img in $BENCH_IMAGES; do
    [ -f "$BENCH_DIR/images/$img/.complete" ] || die "image $img not built: bash tests/bench/images.sh"
done

WORK=$BENCH_DIR/pull
TMPFS=$WORK/tmpfs
DISK=$WORK/disk
LOOP=$WORK/ext4loop
CHECK=$WORK/check
REG_PID=
cleanup() {
    if [ -n "$REG_PID" ] && kill -0 "$REG_PID" 2>/dev/null; then
        kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true
    fi
    if mountpoint -q "$TMPFS"; then umount "$TMPFS"; fi
    if mountpoint -q "$LOOP"; then umount "$LOOP"; fi
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cleanup
mkdir -p "$DISK" "$TMPFS" "$LOOP" "$CHECK"

# The binaries as they are now: the tree may be rebuilt while this runs.
cp "$FLATTEN" "$WORK/flatten"
base_args=()
if [ -n "${FLATTEN_BASE:-}" ]; then
    cp "$(realpath "$FLATTEN_BASE")" "$WORK/flatten-base"
    base_args=(--flatten-base "$WORK/flatten-base" --flatten-base-shown "$(realpath "$FLATTEN_BASE")")
fi
F=$WORK/flatten

fs_args=()
for fs in $BENCH_FS; do
    case $fs in
        disk) fs_args+=(--fs "disk=$DISK") ;;
        tmpfs)
            mount -t tmpfs -o "size=$TMPFS_SIZE,mode=0755" flatten-bench-pull "$TMPFS"
            fs_args+=(--fs "tmpfs=$TMPFS") ;;
        ext4loop)
            truncate -s "$TMPFS_SIZE" "$WORK/ext4loop.img"
            mkfs.ext4 -q "$WORK/ext4loop.img"
            mount -o loop "$WORK/ext4loop.img" "$LOOP"
            fs_args+=(--fs "ext4loop=$LOOP") ;;
        *) die "unknown filesystem $fs (known: disk tmpfs ext4loop)" ;;
    esac
done

# ---- the registry
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start_registry() {
    PORT=$(free_port)
    mkdir -p "$WORK/registry/data"
    cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$PORT
EOF
    docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 100); do
        kill -0 "$REG_PID" 2>/dev/null || return 1
        curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && return 0
        sleep 0.1
    done
    return 1
}
started=0
for _ in 1 2 3; do   # a port taken between free_port and serve: try another
    if start_registry; then started=1; break; fi
    kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; REG_PID=
done
[ "$started" = 1 ] || { tail -n 20 "$WORK/registry.log" >&2; die "docker-registry did not start"; }
REGISTRY=127.0.0.1:$PORT
log "registry on $REGISTRY (pid $REG_PID)"

POLICY=$WORK/policy.json
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$POLICY"
push_md=()
for img in $BENCH_IMAGES; do
    layout=$BENCH_DIR/images/$img/oci-gzip
    t0=$(date +%s.%N)
    skopeo --policy "$POLICY" copy -q --dest-tls-verify=false --dest-no-creds \
        --digestfile "$WORK/$img.digest" "oci:$layout:latest" "docker://$REGISTRY/$img:latest" ||
        die "skopeo copy of $img to the registry failed"
    t1=$(date +%s.%N)
    want=$(python3 -c 'import json, sys
m = [m for m in json.load(open(sys.argv[1]))["manifests"]
     if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"]
print(m[0]["digest"])' "$layout/index.json")
    got=$(cat "$WORK/$img.digest")
    [ "$got" = "$want" ] || die "$img: skopeo pushed manifest $got, the layout has $want (blobs recompressed?)"
    # and the registry serves it under the tag with that digest
    served=$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$REGISTRY/v2/$img/manifests/latest" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
    [ "$served" = "$want" ] || die "$img: the registry serves $served for latest, not $want"
    size=$(du -sm "$layout" | cut -f1)
    secs=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
    log "$img: pushed in $secs s ($size MiB), manifest $want as in the layout"
    push_md+=("- $img: \`skopeo copy oci:\$BENCH_DIR/images/$img/oci-gzip:latest docker://REGISTRY/$img:latest\` in $secs s ($size MiB); manifest \`$want\`, the layout's (gzip blobs pushed as they are)")
done

# ---- timing
img_args=(); for i in $BENCH_IMAGES; do img_args+=(--image "$i"); done
stamp=$(date +%Y%m%d-%H%M%S)
RESULTS=$BENCH_DIR/pull-results-$stamp.md
log "flatten: $FLATTEN ($("$F" --version)), $RUNS rounds; results in $RESULTS"
python3 "$HERE/measure.py" pull --bench-dir "$BENCH_DIR" --flatten "$F" --flatten-shown "$FLATTEN" \
    --label "$label" "${base_args[@]}" --runs "$RUNS" "${fs_args[@]}" "${img_args[@]}" \
    --registry "$REGISTRY" --registry-pid "$REG_PID" --registry-storage "$WORK/registry/data" \
    --policy "$POLICY" --json "$BENCH_DIR/pull-results-$stamp.json" >"$RESULTS.part"
{
    echo
    echo "## Registry"
    echo
    printf '%s\n' "${push_md[@]}"
} >>"$RESULTS.part"

# ---- correctness of the pulled trees (not timed)
log "correctness checks"
failed=0
{
    echo
    echo "## Correctness"
    echo
} >>"$RESULTS.part"
for fs in $BENCH_FS; do
    case $fs in disk) d=$DISK ;; tmpfs) d=$TMPFS ;; ext4loop) d=$LOOP ;; esac
    if [ -n "$(ls -A "$d/nocache" 2>/dev/null)" ]; then
        echo "- $fs: **--no-cache left files in XDG_CACHE_HOME**: $(ls -A "$d/nocache" | head -n 5 | tr '\n' ' ')" >>"$RESULTS.part"
        failed=1
    else
        echo "- $fs: the runs with --no-cache left nothing in their XDG_CACHE_HOME" >>"$RESULTS.part"
    fi
done
for img in $BENCH_IMAGES; do
    rm -rf "$CHECK"; mkdir -p "$CHECK/tmp" "$CHECK/nocache" "$CHECK/cache"
    ref=docker://$REGISTRY/$img:latest
    if ! "$F" -q "oci:$BENCH_DIR/images/$img/oci-gzip:latest" "$CHECK/oci"; then
        echo "- $img: **flatten of the local layout failed**" >>"$RESULTS.part"; failed=1; continue
    fi
    for how in no-cache cold-cache warm-cache; do
        case $how in
            no-cache) cache=$CHECK/nocache; opt=(--no-cache) ;;
            *) cache=$CHECK/cache; opt=() ;;
        esac
        if ! TMPDIR=$CHECK/tmp XDG_CACHE_HOME=$cache "$F" -q --tls-verify=false "${opt[@]}" "$ref" "$CHECK/$how"; then
            echo "- $img: **flatten $ref ($how) failed**" >>"$RESULTS.part"; failed=1; continue
        fi
        rc=0
        "$F" diff "$CHECK/$how" "$CHECK/oci" >"$CHECK/diff.txt" 2>&1 || rc=$?
        if [ "$rc" = 0 ]; then
            echo "- $img: \`flatten diff\` of the pull ($how) against flatten of the local layout: no difference" >>"$RESULTS.part"
        else
            {
                echo "- $img: **\`flatten diff\` of the pull ($how) against flatten of the local layout (exit $rc)**:"
                echo
                echo '```'
                head -n 50 "$CHECK/diff.txt"
                echo '```'
            } >>"$RESULTS.part"
            failed=1
        fi
        rm -rf "${CHECK:?}/$how"
    done
done
rm -rf "$CHECK"
echo >>"$RESULTS.part"
echo "Total run time of pull.sh: $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s (registry start and push included)" >>"$RESULTS.part"
mv "$RESULTS.part" "$RESULTS"
cat "$RESULTS"
log "results in $RESULTS"
[ "$failed" = 0 ] || die "flatten's output is wrong: see Correctness above"
