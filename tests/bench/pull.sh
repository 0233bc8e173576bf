#!/bin/bash
# The registry-pull benchmark: how long `flatten docker://…` takes to write an image's
# root filesystem straight from a registry, next to what it replaces: `skopeo copy` of the
# image to an OCI layout, then flatten or umoci on that copy. Goal: the direct pull is
# faster than the copy alone.
#
#   bash tests/bench/images.sh && bash tests/bench/pull.sh
#   RATE=200mbit DELAY=5ms bash tests/bench/pull.sh      (over a shaped link)
#
# Run as root (it mounts a tmpfs, and flatten/umoci set owners and device nodes). Needs
# Debian's docker-registry, skopeo, umoci, curl, python3 and /usr/bin/time; with RATE or
# DELAY also iproute2 (ip, tc) and iptables. The images come from tests/bench/images.sh,
# in $BENCH_DIR/images.
#
# On loopback (RATE and DELAY unset) the machine's CPUs are the bottleneck: moving the
# blobs costs next to nothing, writing the tree costs the most, so "faster than the copy
# alone" asks more than it does for a user whose registry is across a network. RATE and
# DELAY put the network back in:
#   - the registry runs in a network namespace of its own, flatten-bench-pull, reached
#     through a veth pair: fbpull0 on the host, 10.231.0.1/24, and fbpull1 in the
#     namespace, 10.231.0.2/24; REGISTRY is then 10.231.0.2:5000 for every command;
#   - RATE (a tc rate: 1gbit, 200mbit, 100mbit…): `tbf rate RATE burst 256kb latency 50ms`
#     as the root qdisc of both ends, so each direction carries at most RATE (of Ethernet
#     frames: TCP payload is ~96% of it);
#   - DELAY (5ms, 500us…; one way, so the round trip grows by 2 x DELAY): with netem if the
#     kernel has it, `netem delay 2xDELAY` on fbpull0 (tbf below it); otherwise (netem is
#     CONFIG_NET_SCH_NETEM, missing in some VM kernels) tests/bench/delayline.py, in the
#     namespace at real-time priority, holds each packet arriving there from the host for
#     2 x DELAY (an iptables NFQUEUE rule on fbpull1). Either way the whole round trip is
#     added on the way to the registry: to TCP the two are alike, and a delay on the
#     registry's own way out would hold its bytes in its qdisc, where TCP small queues
#     count them and would cap the throughput below RATE;
#   - the shaping and the delay are put on after the push (which goes unshaped); then a
#     link check: `curl -o /dev/null http://REGISTRY/v2/IMG/blobs/DIGEST` of the largest
#     blob of the first image (twice, the second counted): the connect time (one round
#     trip) and the throughput, against RATE, go into the report;
#   - the namespace, the veth pair, the delay line and its rule are removed at exit.
#
# It starts one plain-HTTP `docker-registry serve` (distribution 2.8) on 127.0.0.1 (a free
# port), or in the namespace above with RATE or DELAY (storage in $BENCH_DIR/pull/registry
# on the disk either way), and pushes each image's OCI layout with gzip layers
# ($BENCH_DIR/images/<img>/oci-gzip:latest) to REGISTRY/<img>:latest with `skopeo copy`;
# the pushed manifest's digest must be the layout's (skopeo pushed the gzip blobs as
# they are). Then for each image (debian,
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
# for each image and filesystem. Timing is measure.py's run_once, as in run.sh. With
# BENCH_TRACE=1 (the default), after the timed rounds of an image and filesystem each
# command but flatten-oci runs once more, untimed, while measure.py samples every 10 ms
# the registry's TCP connections (how many have bytes to send: blobs fetched at once) and,
# over the shaped link, the bytes received on fbpull0: the "Transfer trace" table says
# when the last byte arrived and how long the command ran after it.
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
#   BENCH_TRACE   1 (default): the traced runs above; 0: none
#   RATE          the link's rate, as tc takes it (1gbit, 200mbit…); unset: no limit
#   DELAY         one-way delay added to the link (1ms, 5ms…; round trip + 2 x DELAY);
#                 unset: none. Either one set: the registry is in its namespace (above)
# Output: the markdown on stdout, also in $BENCH_DIR/pull-results-<date>.md (raw numbers
# of every run in pull-results-<date>.json); progress on stderr. Everything else it makes
# ($BENCH_DIR/pull) is removed at exit, and the registry stopped (and the namespace
# removed).
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
BENCH_TRACE=${BENCH_TRACE:-1}
RATE=${RATE:-}
DELAY=${DELAY:-}
NETNS=; [ -z "$RATE$DELAY" ] || NETNS=flatten-bench-pull
VETH_HOST=fbpull0
VETH_NS=fbpull1
HOST_IP=10.231.0.1
NS_IP=10.231.0.2
start=$SECONDS

log() { printf '[pull %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
for t in docker-registry skopeo umoci curl python3; do
    command -v "$t" >/dev/null || die "$t missing (apt-get install docker-registry skopeo umoci curl python3)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"
if [ -n "$NETNS" ]; then
    for t in ip tc iptables chrt; do
        command -v "$t" >/dev/null || die "$t missing (apt-get install iproute2 iptables util-linux)"
    done
fi
# DELAY in seconds, and the round trip it adds in microseconds
if [ -n "$DELAY" ]; then
    delay_s=$(python3 -c 'import re, sys
m = re.fullmatch(r"([0-9]*\.?[0-9]+)(s|ms|us)", sys.argv[1])
print(float(m[1]) * {"s": 1, "ms": 1e-3, "us": 1e-6}[m[2]] if m else "")' "$DELAY")
    [ -n "$delay_s" ] || die "DELAY=$DELAY: want a number and s, ms or us (e.g. 5ms)"
    rtt_us=$(python3 -c "print(round(2 * $delay_s * 1e6))")
fi
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
DL_PID=
cleanup() {
    if [ -n "$REG_PID" ] && kill -0 "$REG_PID" 2>/dev/null; then
        kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true
    fi
    if [ -n "$DL_PID" ] && kill -0 "$DL_PID" 2>/dev/null; then
        kill "$DL_PID"; wait "$DL_PID" 2>/dev/null || true
    fi
    # the namespace (its end of the veth pair, its iptables rule), also one left by a
    # run that was killed; deleting either end of the pair deletes both
    if command -v ip >/dev/null; then
        if ip netns list | grep -q '^flatten-bench-pull\b'; then ip netns del flatten-bench-pull; fi
        if ip link show "$VETH_HOST" >/dev/null 2>&1; then ip link del "$VETH_HOST"; fi
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

# ---- the namespace and the link (RATE, DELAY)
if [ -n "$NETNS" ]; then
    if ip -br addr | grep -q ' 10\.231\.0\.'; then die "10.231.0.0/24 is in use here: $(ip -br addr | grep ' 10\.231\.0\.')"; fi
    ip netns add "$NETNS"
    ip link add "$VETH_HOST" type veth peer name "$VETH_NS" netns "$NETNS"
    ip addr add "$HOST_IP/24" dev "$VETH_HOST"
    ip link set "$VETH_HOST" up
    ip -n "$NETNS" addr add "$NS_IP/24" dev "$VETH_NS"
    ip -n "$NETNS" link set "$VETH_NS" up
    ip -n "$NETNS" link set lo up
    log "network namespace $NETNS: $VETH_HOST $HOST_IP <-> $VETH_NS $NS_IP (shaped after the push)"
fi

# ---- the registry
free_port() {
    if [ -n "$NETNS" ]; then echo 5000; return; fi   # a namespace of its own: all free
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
REG_IP=127.0.0.1; [ -z "$NETNS" ] || REG_IP=$NS_IP
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
  addr: $REG_IP:$PORT
EOF
    # (ip netns exec execs the command: REG_PID is the registry's)
    if [ -n "$NETNS" ]; then
        ip netns exec "$NETNS" docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry.log" 2>&1 &
    else
        docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry.log" 2>&1 &
    fi
    REG_PID=$!
    for _ in $(seq 100); do
        kill -0 "$REG_PID" 2>/dev/null || return 1
        curl -sf "http://$REG_IP:$PORT/v2/" >/dev/null && return 0
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
REGISTRY=$REG_IP:$PORT
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

# ---- shaping the link, and checking it
net_args=()
link_md=()
if [ -n "$NETNS" ]; then
    tbf=(tbf rate "$RATE" burst 256kb latency 50ms)
    shaped=()
    if [ -n "$RATE" ]; then
        ip netns exec "$NETNS" tc qdisc add dev "$VETH_NS" root "${tbf[@]}" || die "tc does not take RATE=$RATE"
        shaped+=("RATE=$RATE: \`${tbf[*]}\` as the root qdisc of both ends of the veth pair")
    fi
    if [ -n "$DELAY" ]; then
        if tc qdisc add dev "$VETH_HOST" root handle 1: netem delay "${rtt_us}us" 2>/dev/null; then
            [ -z "$RATE" ] || tc qdisc add dev "$VETH_HOST" parent 1:1 handle 10: "${tbf[@]}"
            how_delay="\`netem delay ${rtt_us}us\` on $VETH_HOST"
        else
            [ -z "$RATE" ] || tc qdisc add dev "$VETH_HOST" root "${tbf[@]}"
            ip netns exec "$NETNS" chrt -f 10 python3 "$HERE/delayline.py" --queue 0 \
                --delay "$(python3 -c "print($rtt_us / 1e6)")" >"$WORK/delayline.out" 2>"$WORK/delayline.log" &
            DL_PID=$!
            for _ in $(seq 50); do
                grep -q ready "$WORK/delayline.out" 2>/dev/null && break
                kill -0 "$DL_PID" 2>/dev/null || break
                sleep 0.1
            done
            grep -q ready "$WORK/delayline.out" 2>/dev/null || { cat "$WORK/delayline.log" >&2; die "the delay line did not start"; }
            ip netns exec "$NETNS" iptables -A INPUT -i "$VETH_NS" -j NFQUEUE --queue-num 0
            how_delay="no netem in this kernel: tests/bench/delayline.py, SCHED_FIFO, holds each packet the namespace receives from the host $rtt_us µs (iptables NFQUEUE on $VETH_NS)"
        fi
        shaped+=("DELAY=$DELAY one way: the round trip grows by $(python3 -c "print(f'{$rtt_us / 1000:g}')") ms, all of it added toward the registry ($how_delay)")
    elif [ -n "$RATE" ]; then
        tc qdisc add dev "$VETH_HOST" root "${tbf[@]}"
    fi
    title="${RATE:+RATE=$RATE}${RATE:+${DELAY:+, }}${DELAY:+DELAY=$DELAY}"
    cc=$(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo '?')
    net_md="the registry in network namespace $NETNS, reached through a veth pair ($VETH_HOST $HOST_IP on the host, $VETH_NS $NS_IP in the namespace); $(printf '%s; ' "${shaped[@]}")TCP congestion control $cc; the push to the registry went unshaped"
    net_args=(--network "$net_md" --network-title "$title")
    [ -z "$DL_PID" ] || net_args+=(--helper-pid "$DL_PID")
    [ "$BENCH_TRACE" != 1 ] || net_args+=(--trace-dev "$VETH_HOST")
    log "link: $title"

    # the link check: the largest blob of the first image, twice (the second counted)
    img=${BENCH_IMAGES%% *}
    read -r big bigsize < <(python3 -c 'import json, sys
d = sys.argv[1]
i = [m for m in json.load(open(d + "/index.json"))["manifests"]
     if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"][0]
m = json.load(open(d + "/blobs/" + i["digest"].replace(":", "/")))
l = max(m["layers"], key=lambda l: l["size"])
print(l["digest"], l["size"])' "$BENCH_DIR/images/$img/oci-gzip")
    for _ in 1 2; do
        w=$(curl -sf -o /dev/null -w '%{time_connect} %{time_starttransfer} %{time_total} %{size_download}' \
            "http://$REGISTRY/v2/$img/blobs/$big") || die "curl of $img's blob $big failed"
    done
    read -r t_conn t_first t_total n_bytes <<<"$w"
    [ "$n_bytes" = "$bigsize" ] || die "curl got $n_bytes bytes of $big, not $bigsize"
    check=$(python3 -c 'import re, sys
rate, conn, first, total, n = sys.argv[1], *map(float, sys.argv[2:])
bits = None
m = re.fullmatch(r"([0-9]*\.?[0-9]+)([kmgt]?)(bit|bps)", rate.lower())
if m:
    bits = float(m[1]) * 1000 ** " kmgt".index(m[2] or " ") * (8 if m[3] == "bps" else 1)
got = n * 8 / (total - first)   # from the first byte to the last
print(f"{n / 2**20:.1f} MiB in {total:.3f} s; connect (one round trip) {conn * 1000:.2f} ms, first byte at "
      f"{first * 1000:.1f} ms; {got / 1e6:.0f} Mbit/s from first byte to last ({n * 8 / total / 1e6:.0f} "
      f"Mbit/s overall)" + (f" = {got / bits * 100:.0f}% of RATE ({bits / 1e6:.0f} Mbit/s of frames; "
                            "TCP payload over Ethernet is ~96% of it)" if bits else ""))' \
        "$RATE" "$t_conn" "$t_first" "$t_total" "$n_bytes")
    log "link check: $check"
    link_md=("- link check, \`curl -o /dev/null http://REGISTRY/v2/$img/blobs/$big\` (its largest blob; the second of two): $check")
fi

# ---- timing
img_args=(); for i in $BENCH_IMAGES; do img_args+=(--image "$i"); done
trace_args=(); [ "$BENCH_TRACE" != 1 ] || trace_args=(--trace)
stamp=$(date +%Y%m%d-%H%M%S)
RESULTS=$BENCH_DIR/pull-results-$stamp.md
log "flatten: $FLATTEN ($("$F" --version)), $RUNS rounds; results in $RESULTS"
python3 "$HERE/measure.py" pull --bench-dir "$BENCH_DIR" --flatten "$F" --flatten-shown "$FLATTEN" \
    --label "$label" "${base_args[@]}" --runs "$RUNS" "${fs_args[@]}" "${img_args[@]}" \
    --registry "$REGISTRY" --registry-pid "$REG_PID" --registry-storage "$WORK/registry/data" \
    --policy "$POLICY" --json "$BENCH_DIR/pull-results-$stamp.json" "${net_args[@]}" "${trace_args[@]}" \
    >"$RESULTS.part"
[ -z "$DL_PID" ] || kill -0 "$DL_PID" 2>/dev/null || die "the delay line died: $(tail -n 5 "$WORK/delayline.log")"
{
    echo
    echo "## Registry"
    echo
    printf '%s\n' "${push_md[@]}" "${link_md[@]}"
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
