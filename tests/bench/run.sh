#!/bin/bash
# The flatten benchmark: how long flatten takes to write an image's root filesystem,
# next to the floor (GNU tar extracting a tar of the final tree) and other tools.
#
#   bash tests/bench/images.sh && bash tests/bench/run.sh
#
# Run as root (it mounts a tmpfs, and flatten/umoci/tar set owners and device nodes).
# The images come from tests/bench/images.sh, in $BENCH_DIR/images.
#
# For each image (debian, churn) x form (docker-archive with plain layers; OCI layout
# with gzip layers) x filesystem (a dir on the disk under $BENCH_DIR, and a tmpfs this
# script mounts at $BENCH_DIR/tmpfs and unmounts at exit; optionally ext4loop, a new
# ext4 in a file on the disk, loop-mounted), in rounds that interleave the commands
# (the first round is a warm-up and is not counted; before each command the script
# waits, up to 60 s, until other processes leave the CPUs alone):
#   floor          tar -x of final.tar (the final tree) into an empty dir
#   flatten        $FLATTEN -q IMAGE OUT
#   umoci          umoci raw unpack (OCI layout: oci-plain for the plain form, oci-gzip)
#   gnutar-layers  tar -x (-xz) of every layer in order into one dir, whiteouts not
#                  applied: a reference only
#   inflate-igzip, inflate-gzip (gzip form, first filesystem only): igzip -dc / gzip -dc
#                  of every layer to /dev/null
# It reports the median time, the median of the per-round ratios to the floor, peak
# RSS and /proc/PID/io (wchar, write_bytes, cancelled_write_bytes), then the syscall
# counts of one run of each (strace -f -c), then checks flatten's output: the debian
# tree must run `dpkg -l` in a chroot, and `flatten diff` against umoci's tree must
# find no difference (the script fails otherwise).
#
# Settings (environment):
#   FLATTEN       flatten binary (default: target/release/flatten of this repo)
#   FLATTEN_LABEL what to call it in the report (e.g. the commit it was built from)
#   FLATTEN_BASE  another flatten binary timed in the same rounds as `flatten-base` (for a
#                 before/after comparison in one run)
#   RUNS          timed rounds (default 5)
#   BENCH_DIR     cache dir (default /var/tmp/flatten-bench)
#   BENCH_IMAGES  default "debian churn";  BENCH_FORMS  default "plain gzip"
#   BENCH_FS      default "disk tmpfs"; also ext4loop;  TMPFS_SIZE default 4g (also
#                 the size of the ext4loop image)
#   BENCH_QUIET   1 (default): wait for quiet CPUs before each command; 0: don't
#   SYSCALLS      1 (default) to add the strace counts, 0 not to
#   BENCH_SKIP    commands to leave out, comma-separated (e.g. umoci,gnutar-layers)
# Output: the markdown on stdout, also in $BENCH_DIR/results-<date>.md (raw numbers
# of every run in results-<date>.json); progress on stderr.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/flatten-bench}
RUNS=${RUNS:-5}
FLATTEN=${FLATTEN:-$REPO/target/release/flatten}
BENCH_IMAGES=${BENCH_IMAGES:-debian churn}
BENCH_FORMS=${BENCH_FORMS:-plain gzip}
BENCH_FS=${BENCH_FS:-disk tmpfs}
TMPFS_SIZE=${TMPFS_SIZE:-4g}
SYSCALLS=${SYSCALLS:-1}

log() { printf '[run %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
for t in tar gzip igzip openssl umoci python3 strace chroot; do
    command -v "$t" >/dev/null || die "$t missing: run tests/bench/images.sh first (it installs the tools)"
done
[ -x "$FLATTEN" ] || die "no flatten binary at $FLATTEN (cargo build --release, or set FLATTEN)"
FLATTEN=$(realpath "$FLATTEN")
# What the binary is, for the report: FLATTEN_LABEL, or the repo's state for its own build.
if [ -n "${FLATTEN_LABEL:-}" ]; then
    label=$FLATTEN_LABEL
elif [ "$FLATTEN" = "$(realpath -m "$REPO/target/release/flatten")" ]; then
    label="this repo's build; work tree at $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')"
else
    label=""
fi
for img in $BENCH_IMAGES; do
    [ -f "$BENCH_DIR/images/$img/.complete" ] || die "image $img not built: bash tests/bench/images.sh"
done

TMPFS=$BENCH_DIR/tmpfs
DISK=$BENCH_DIR/disk
LOOP=$BENCH_DIR/ext4loop
CHECK=$DISK/check
cleanup() {
    rm -rf --one-file-system "$DISK"
    if mountpoint -q "$TMPFS"; then umount "$TMPFS"; fi
    if mountpoint -q "$LOOP"; then umount "$LOOP"; fi
    rm -f "$BENCH_DIR/ext4loop.img"
}
trap cleanup EXIT
cleanup
mkdir -p "$DISK" "$TMPFS" "$LOOP"

fs_args=()
for fs in $BENCH_FS; do
    case $fs in
        disk) fs_args+=(--fs "disk=$DISK") ;;
        tmpfs)
            mount -t tmpfs -o "size=$TMPFS_SIZE,mode=0755" flatten-bench "$TMPFS"
            fs_args+=(--fs "tmpfs=$TMPFS") ;;
        ext4loop)
            truncate -s "$TMPFS_SIZE" "$BENCH_DIR/ext4loop.img"
            mkfs.ext4 -q "$BENCH_DIR/ext4loop.img"
            mount -o loop "$BENCH_DIR/ext4loop.img" "$LOOP"
            fs_args+=(--fs "ext4loop=$LOOP") ;;
        *) die "unknown filesystem $fs (known: disk tmpfs ext4loop)" ;;
    esac
done
img_args=(); for i in $BENCH_IMAGES; do img_args+=(--image "$i"); done
form_args=(); for f in $BENCH_FORMS; do form_args+=(--form "$f"); done
extra=(); [ "$SYSCALLS" = 1 ] && extra+=(--syscalls)
[ -n "${FLATTEN_BASE:-}" ] && extra+=(--flatten-base "$(realpath "$FLATTEN_BASE")")

stamp=$(date +%Y%m%d-%H%M%S)
RESULTS=$BENCH_DIR/results-$stamp.md
start=$SECONDS
log "flatten: $FLATTEN ($("$FLATTEN" --version)), $RUNS rounds; results in $RESULTS"
python3 "$HERE/measure.py" bench --bench-dir "$BENCH_DIR" --flatten "$FLATTEN" --label "$label" \
    --runs "$RUNS" "${fs_args[@]}" "${img_args[@]}" "${form_args[@]}" "${extra[@]}" \
    --json "$BENCH_DIR/results-$stamp.json" >"$RESULTS.part"

# ---- correctness of flatten's output (not timed)
log "correctness checks"
failed=0
{
    echo
    echo "## Correctness"
    echo
} >>"$RESULTS.part"
for img in $BENCH_IMAGES; do
    I=$BENCH_DIR/images/$img
    rm -rf "$CHECK"; mkdir -p "$CHECK"
    umoci raw unpack --image "$I/oci-gzip:latest" "$CHECK/umoci" >/dev/null 2>"$CHECK/umoci.log" ||
        { cat "$CHECK/umoci.log" >&2; die "umoci raw unpack of $img failed"; }
    for form in $BENCH_FORMS; do
        case $form in
            plain) src=$I/docker-archive.tar ;;
            gzip) src=$I/oci-gzip ;;
        esac
        out=$CHECK/flatten-$form
        if ! "$FLATTEN" -q "$src" "$out"; then
            echo "- $img $form: **flatten failed**" >>"$RESULTS.part"; failed=1; continue
        fi
        if [ "$img" = debian ]; then
            if chroot "$out" /bin/sh -c 'dpkg -l >/dev/null'; then
                echo "- $img $form: \`chroot OUT /bin/sh -c 'dpkg -l >/dev/null'\` ok" >>"$RESULTS.part"
            else
                echo "- $img $form: **dpkg -l in a chroot failed**" >>"$RESULTS.part"; failed=1
            fi
        fi
        rc=0
        "$FLATTEN" diff "$out" "$CHECK/umoci" >"$CHECK/diff.txt" 2>&1 || rc=$?
        if [ "$rc" = 0 ]; then
            echo "- $img $form: \`flatten diff\` against \`umoci raw unpack\`: no difference" >>"$RESULTS.part"
        else
            {
                echo "- $img $form: **\`flatten diff\` against \`umoci raw unpack\` (exit $rc)**:"
                echo
                echo '```'
                head -n 50 "$CHECK/diff.txt"
                echo '```'
            } >>"$RESULTS.part"
            failed=1
        fi
        rm -rf "$out"
    done
done
rm -rf "$CHECK"
echo >>"$RESULTS.part"
echo "Total run time of run.sh: $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s" >>"$RESULTS.part"
mv "$RESULTS.part" "$RESULTS"
cat "$RESULTS"
log "results in $RESULTS"
[ "$failed" = 0 ] || die "flatten's output is wrong: see Correctness above"
