#!/bin/bash
# Build the Docker test images with a private Docker daemon and write
#   docker/cases.tar                  docker save of every image (legacy layout)
#   docker/<case>.export.tar          docker export of `docker create <image>`
#   docker/whiteout-file.tar(.gz|.zst) single-image docker save, plus compressed copies
#   docker/layers.txt                 what each layer of each image holds (tar -tv)
#   docker/BUILD-INFO.txt             daemon version, storage driver, tool versions
# Run as root on Debian: bash testdata/make/docker.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
install_tools docker.io busybox-static libcap2-bin zstd pigz python3

OUT=$TESTDATA/docker
mkdir -p "$OUT"
docker_up "$WORK/docker"

# ---------------------------------------------------------------- base
# One tiny base layer: static busybox plus applet symlinks. Its tar is
# made deterministic so the base layer digest is stable across runs.
base=$WORK/base-rootfs
rm -rf "$base"; mkdir -p "$base/bin" "$base/tmp" "$base/etc"
cp /bin/busybox "$base/bin/busybox"
for a in sh ls rm mkdir rmdir ln chmod chown chgrp mkfifo mknod touch echo cat cp mv \
         printf true false test sleep head stat find dd truncate; do
    ln -s busybox "$base/bin/$a"
done
chmod 1777 "$base/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' >"$base/etc/passwd"
echo 'root:x:0:' >"$base/etc/group"
find "$base" -exec touch -h -d @"$SOURCE_DATE_EPOCH" {} +
det_tar "$base" "$WORK/base.tar"
d import --change 'CMD ["/bin/sh"]' "$WORK/base.tar" flatten-test/base:latest >/dev/null

# ---------------------------------------------------------------- cases
# Every case image ends with `RUN rm /bin/busybox` (a file whiteout of
# the base layer) so that the exports stay a few KiB instead of 2 MiB.
STRIP='RUN rm /bin/busybox'
CASES=()   # appended to by build (lib.sh)

build whiteout-file <<EOF
FROM flatten-test/base
RUN mkdir -p /a/b && echo keep >/a/keep && echo gone >/a/gone && echo gone >/a/b/gone \
 && echo top >/gone-top && echo survivor >/a/b/survivor
RUN rm /a/gone /a/b/gone /gone-top \
 && echo temp >/a/created-and-deleted-same-layer && rm /a/created-and-deleted-same-layer
$STRIP
EOF

build whiteout-dir <<EOF
FROM flatten-test/base
RUN mkdir -p /d/sub/deeper /e/sub/deeper /e/kept \
 && echo 1 >/d/f && echo 2 >/d/sub/f && echo 3 >/d/sub/deeper/f \
 && echo 4 >/e/sub/f && echo 5 >/e/sub/deeper/f && echo 6 >/e/kept/f && echo 7 >/e/f
RUN rm -rf /d /e/sub
$STRIP
EOF

# go-containerregistry #2191: rm -rf + mkdir in one RUN -> overlay2 marks the
# new directory opaque; the layer holds r/.wh..wh..opq plus the new files.
build dir-recreated <<EOF
FROM flatten-test/base
RUN mkdir -p /r/sub && echo old >/r/old && echo old >/r/sub/old && echo same-name-old >/r/same
RUN rm -rf /r && mkdir -p /r/newsub && echo new >/r/new && echo new >/r/newsub/new && echo same-name-new >/r/same
$STRIP
EOF

build opaque-dir <<EOF
FROM flatten-test/base
RUN mkdir -p /o/sub /p/q/sub && echo x >/o/x && echo y >/o/sub/y \
 && echo keep >/p/keep && echo z >/p/q/z && echo w >/p/q/sub/w
RUN rm -rf /o && mkdir /o && rm -rf /p/q && mkdir /p/q
$STRIP
EOF

build type-change <<EOF
FROM flatten-test/base
RUN mkdir -p /t/d2f/c /t/d2l/c /t/target-dir && echo f >/t/f2d && echo c >/t/d2f/c/x && echo c >/t/d2l/c/x \
 && echo in-target >/t/target-dir/file && ln -s target-dir /t/l2f && echo f >/t/f2l && ln -s target-dir /t/l2d \
 && mkdir /t/d2hl && echo c >/t/d2hl/x && echo hl-source >/t/hl-source
RUN rm /t/f2d && mkdir /t/f2d && echo child >/t/f2d/child \
 && rm -rf /t/d2f && echo now-a-file >/t/d2f \
 && rm -rf /t/d2l && ln -s /t/target-dir /t/d2l \
 && rm /t/l2f && echo now-a-file >/t/l2f \
 && rm /t/f2l && ln -s target-dir /t/f2l \
 && rm /t/l2d && mkdir /t/l2d && echo child >/t/l2d/child \
 && rm -rf /t/d2hl && ln /t/hl-source /t/d2hl
$STRIP
EOF

build hardlink-layer <<EOF
FROM flatten-test/base
RUN mkdir -p /h/sub /h/other && echo shared >/h/b-first && ln /h/b-first /h/a-link \
 && ln /h/b-first /h/sub/c-link && ln /h/b-first /h/other/z-link \
 && echo lower >/h/lower
RUN ln /h/lower /h/upper-link-to-lower
$STRIP
EOF

# go-containerregistry #977: the target of a hardlink is deleted or replaced later.
# Docker writes the name that sorts first as the regular file and the others
# as hardlinks to it, so a* is the tar target and z* the link entry.
build hardlink-whiteout <<EOF
FROM flatten-test/base
RUN mkdir /h && echo one >/h/a1 && ln /h/a1 /h/z1 \
 && echo two >/h/a2 && ln /h/a2 /h/z2 \
 && echo three >/h/a3 && ln /h/a3 /h/z3 \
 && echo four >/h/a4 && ln /h/a4 /h/z4
RUN rm /h/a1 && echo two-rewritten >/h/a2 && rm /h/a3 && echo three-new >/h/a3 && rm /h/z4
$STRIP
EOF

# go-containerregistry #2002, the exact reproducer from the issue.
build hardlink-2002 <<EOF
FROM flatten-test/base
WORKDIR /x
RUN echo 123 -> t2
RUN ln t2 t1 && ln t2 t3
RUN echo 456 -> t1
$STRIP
EOF

build modes <<EOF
FROM flatten-test/base
RUN mkdir -p /m/d0000 /m/d0555 /m/sticky /m/d0700 && echo s >/m/setuid && echo g >/m/setgid \
 && echo both >/m/setuid-setgid && echo n >/m/f0000 && echo r >/m/d0555/inside && echo x >/m/f0755 \
 && echo w >/m/f0600 && mkdir /m/d2775 \
 && chmod 4755 /m/setuid && chmod 2755 /m/setgid && chmod 6711 /m/setuid-setgid && chmod 0000 /m/f0000 \
 && chmod 0755 /m/f0755 && chmod 0600 /m/f0600 && chmod 1777 /m/sticky && chmod 0700 /m/d0700 \
 && chmod 2775 /m/d2775 && chmod 0555 /m/d0555 && chmod 0000 /m/d0000
RUN chmod 0640 /m/f0755
$STRIP
EOF

build owners <<EOF
FROM flatten-test/base
RUN mkdir -p /o/dir && echo a >/o/file && echo b >/o/dir/file && ln -s file /o/link \
 && chown 1234:5678 /o/file && chown -R 1000:1000 /o/dir && chown -h 4321:8765 /o/link \
 && echo big >/o/bigid && chown 70000:70001 /o/bigid && echo c >/o/later
RUN chown 99:99 /o/later
$STRIP
EOF

build special-files <<EOF
FROM flatten-test/base
RUN mkdir /s && mkfifo -m 0620 /s/fifo && mknod -m 0666 /s/null c 1 3 && mknod -m 0660 /s/loop7 b 7 7 \
 && mknod -m 0600 /s/bigdev c 511 1048575
$STRIP
EOF

build symlinks <<EOF
FROM flatten-test/base
RUN mkdir -p /l/real/dir && echo target >/l/real/file && echo in-dir >/l/real/dir/f \
 && ln -s /l/real/file /l/abs-file && ln -s real/file /l/rel-file && ln -s ../l/real/dir /l/rel-dir \
 && ln -s /l/real/dir /l/abs-dir && ln -s does-not-exist /l/dangling && ln -s /nowhere/at/all /l/dangling-abs \
 && ln -s rel-file /l/chain && ln -s ../../../../etc/passwd /l/up-out-of-root && ln -s . /l/self-dir \
 && ln -s /l/real/dir /l/to-be-written-through
RUN echo via-symlink >/l/to-be-written-through/added
$STRIP
EOF

build long-names <<EOF
FROM flatten-test/base
RUN mkdir -p "/n/with space/ünïcödé" /n/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/cccccccccccccccccccccccccccccccccccccccccccccccccc \
 && echo long >/n/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/cccccccccccccccccccccccccccccccccccccccccccccccccc/file-with-a-name-that-is-well-over-one-hundred-characters-long-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx \
 && echo long2 >/n/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/cccccccccccccccccccccccccccccccccccccccccccccccccc/deleted-file-with-a-name-that-is-well-over-one-hundred-characters-long-yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy \
 && echo u >"/n/with space/ünïcödé/file name" && echo q >"/n/quote'and\"dq" \
 && ln -s /n/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/cccccccccccccccccccccccccccccccccccccccccccccccccc/file-with-a-name-that-is-well-over-one-hundred-characters-long-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx /n/long-symlink
RUN rm /n/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/cccccccccccccccccccccccccccccccccccccccccccccccccc/deleted-file-with-a-name-that-is-well-over-one-hundred-characters-long-yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
$STRIP
EOF

build config <<EOF
FROM flatten-test/base
LABEL org.example.case="config" org.example.second="two words"
ENV FOO=bar GREETING="hello world"
WORKDIR /srv/app
RUN echo data >/srv/app/data && chown -R 1234:5678 /srv/app
$STRIP
EXPOSE 8080/tcp 53/udp
USER 1234:5678
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hello"]
STOPSIGNAL SIGTERM
EOF

# File capabilities: setcap on files in the build context. COPY is tried
# first (the classic builder drops the xattr there); ADD of a local tar that
# carries SCHILY.xattr.security.capability is extracted by the daemon with
# the xattr, and overlay2's diff then keeps it in the layer.
mkdir -p "$WORK/ctx/capabilities" "$WORK/captree/caps-added"
printf '#!/bin/sh\necho cap\n' >"$WORK/ctx/capabilities/cap-file"
chmod 0755 "$WORK/ctx/capabilities/cap-file"
setcap cap_net_bind_service,cap_net_raw+ep "$WORK/ctx/capabilities/cap-file"
printf 'plain\n' >"$WORK/ctx/capabilities/plain-file"
cp -a "$WORK/ctx/capabilities/cap-file" "$WORK/captree/caps-added/cap-file"
setcap cap_net_bind_service,cap_net_raw+ep "$WORK/captree/caps-added/cap-file"
printf 'plain\n' >"$WORK/captree/caps-added/plain-file"
find "$WORK/captree" -exec touch -h -d @"$SOURCE_DATE_EPOCH" {} +
det_tar "$WORK/captree" "$WORK/ctx/capabilities/caps.tar"
build capabilities <<EOF
FROM flatten-test/base
COPY cap-file plain-file /caps-copied/
ADD caps.tar /
$STRIP
EOF

# Layer sharing: shared-b has exactly shared-a's layers (LABEL only), so its
# top layer gets a different v1 id; dup-layer has the same diff twice.
build shared-a <<EOF
FROM flatten-test/base
RUN mkdir /shared && echo from-a >/shared/file
$STRIP
EOF
build shared-b <<EOF
FROM flatten-test/shared-a
LABEL org.example.case="shared-b"
EOF
build dup-layer <<EOF
FROM flatten-test/base
RUN echo same >/dup && touch -d '2001-02-03 04:05:06' /dup
RUN echo same >/dup && touch -d '2001-02-03 04:05:06' /dup
$STRIP
EOF

# ---------------------------------------------------------------- outputs
log "save cases.tar"
refs=(flatten-test/base:latest)
for c in "${CASES[@]}"; do refs+=("flatten-test/$c:latest"); done
d save -o "$OUT/cases.tar" "${refs[@]}"

log "single-image save"
d save -o "$OUT/whiteout-file.tar" flatten-test/whiteout-file:latest
gzip -9 -n -c "$OUT/whiteout-file.tar" >"$OUT/whiteout-file.tar.gz"
zstd -q -19 -f -o "$OUT/whiteout-file.tar.zst" "$OUT/whiteout-file.tar"

for c in "${CASES[@]}"; do
    log "export $c"
    cid=$(d create "flatten-test/$c:latest")
    d export -o "$OUT/$c.export.tar" "$cid"
    d rm "$cid" >/dev/null
done

python3 "$MAKE_DIR/describe.py" docker-save "$OUT/cases.tar" >"$OUT/layers.txt"

{
    echo "made by: testdata/make/docker.sh"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "docker server: $(d version --format '{{.Server.Version}}')"
    echo "docker client: $(d version --format '{{.Client.Version}}')"
    echo "storage driver: $DRIVER"
    echo "builder: classic (DOCKER_BUILDKIT=0)"
    echo "busybox-static: $(dpkg-query -W -f '${Version}' busybox-static)"
    echo "kernel: $(uname -r)"
    echo "images: ${refs[*]}"
} >"$OUT/BUILD-INFO.txt"

chmod 0644 "$OUT"/*
stop_daemon
log "docker done"
