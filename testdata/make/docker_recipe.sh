#!/bin/bash
# Small real Docker images for checking the README's comparison recipe
#   flatten docker-archive:images.tar:<ref> rootfs
#   flatten diff --mtime seconds --ignore-docker-init rootfs <case>.export.tar
# against what `docker export` really adds, drops and restamps. Writes
#   docker-recipe/images.tar          docker save of every image (legacy layout)
#   docker-recipe/<case>.export.tar   docker export of `docker create <image>`
#   docker-recipe/layers.txt          what each layer of each image holds (tar -tv)
#   docker-recipe/BUILD-INFO.txt      versions, storage driver, container creation times
# No busybox anywhere (images.tar stays well under 1 MB): the cases are
# `docker import`s of deterministic tars, and the RUN steps of the built
# cases run `recipe-run`, a 30 KiB static musl helper (source below).
# Run as root on Debian: bash testdata/make/docker_recipe.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
install_tools docker.io musl-tools attr libcap2-bin python3

OUT=$TESTDATA/docker-recipe
mkdir -p "$OUT"
rm -f "$OUT"/*.tar "$OUT"/*.txt
docker_up "$WORK/recipe-docker"

# stamp DIR: every path in DIR gets the fixed mtime
stamp() { find "$1" -exec touch -h -d @"$SOURCE_DATE_EPOCH" {} +; }
# import_tree NAME TREE [--change INSTR]...: deterministic tar of TREE ->
# image flatten-test/NAME:latest
import_tree() {
    local name=$1 tree=$2; shift 2
    stamp "$tree"
    det_tar "$tree" "$WORK/$name.tar"
    log "import $name"
    d import --change 'CMD ["/recipe-run"]' "$@" "$WORK/$name.tar" "flatten-test/$name:latest" >/dev/null
}
CASES=()

# ---------------------------------------------------------------- helper
# recipe-run OP ARGS [OP ARGS]...: a stand-in for `sh -c` in RUN steps,
# small enough to leave in the image. Paths are relative to the WORKDIR.
#   write PATH TEXT   (creates/truncates, mode 0644, TEXT + "\n")
#   mkdir PATH MODE   chmod PATH MODE   chown PATH UID GID   rm PATH
mkdir -p "$WORK/helper"
cat >"$WORK/helper/recipe-run.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
static void fail(const char *what, const char *path) { perror(path); fprintf(stderr, "recipe-run: %s failed\n", what); exit(1); }
int main(int argc, char **argv) {
    int i = 1;
    while (i < argc) {
        const char *op = argv[i++];
        if (!strcmp(op, "write") && i + 1 < argc) {
            const char *p = argv[i++], *t = argv[i++];
            int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, t, strlen(t)) < 0 || write(fd, "\n", 1) != 1 || close(fd)) fail(op, p);
        } else if (!strcmp(op, "mkdir") && i + 1 < argc) {
            const char *p = argv[i++]; mode_t m = strtol(argv[i++], 0, 8);
            if (mkdir(p, m) || chmod(p, m)) fail(op, p);
        } else if (!strcmp(op, "chmod") && i + 1 < argc) {
            const char *p = argv[i++];
            if (chmod(p, strtol(argv[i++], 0, 8))) fail(op, p);
        } else if (!strcmp(op, "chown") && i + 2 < argc) {
            const char *p = argv[i++]; long u = atol(argv[i++]), g = atol(argv[i++]);
            if (lchown(p, u, g)) fail(op, p);
        } else if (!strcmp(op, "rm") && i < argc) {
            const char *p = argv[i++];
            if (unlink(p)) fail(op, p);
        } else {
            fprintf(stderr, "recipe-run: bad op %s\n", op); return 2;
        }
    }
    return 0;
}
EOF
musl-gcc -static -Os -s -o "$WORK/helper/recipe-run" "$WORK/helper/recipe-run.c"

# ---------------------------------------------------------------- base
# recipe-base: the helper, etc/passwd, etc/group, tmp/ (1777). No /srv.
B=$WORK/recipe-base; rm -rf "$B"; mkdir -p "$B/etc" "$B/tmp"
install -m 0755 "$WORK/helper/recipe-run" "$B/recipe-run"
echo 'root:x:0:0:root:/root:/recipe-run' >"$B/etc/passwd"
echo 'root:x:0:' >"$B/etc/group"
chmod 1777 "$B/tmp"
import_tree recipe-base "$B"

# ---------------------------------------------------------------- cases
# no-etc: one imported layer with one file; no etc/, dev/, proc/, sys/.
T=$WORK/tree-no-etc; rm -rf "$T"; mkdir -p "$T"
echo 'the only file' >"$T/hello.txt"
import_tree no-etc "$T"; CASES+=(no-etc)

# user-xattrs: imported GNU tar (SCHILY.xattr.* records) with user.*,
# trusted.* and security.capability xattrs on files and a directory.
T=$WORK/tree-user-xattrs; rm -rf "$T"; mkdir -p "$T/x/user-dir"
echo user >"$T/x/user-file";     setfattr -n user.a -v alpha "$T/x/user-file"
                                 setfattr -n user.b -v 0x00ff0a "$T/x/user-file"
echo inside >"$T/x/user-dir/inside"; setfattr -n user.dir -v on-a-dir "$T/x/user-dir"
echo cap >"$T/x/cap-file";       chmod 0755 "$T/x/cap-file"
                                 setcap cap_net_raw+ep "$T/x/cap-file"
echo both >"$T/x/cap-and-user";  chmod 0755 "$T/x/cap-and-user"
                                 setcap cap_net_bind_service+ep "$T/x/cap-and-user"
                                 setfattr -n user.mixed -v yes "$T/x/cap-and-user"
echo trusted >"$T/x/trusted-file"; setfattr -n trusted.t -v one "$T/x/trusted-file"
echo plain >"$T/x/plain"
getfattr -R -d -m - -e hex --absolute-names "$T" >"$WORK/user-xattrs.getfattr" 2>&1 || true
grep -q user.dir "$WORK/user-xattrs.getfattr" || die "user xattrs not supported under $WORK"
import_tree user-xattrs "$T"; CASES+=(user-xattrs)

# init-shadow: an imported layer that already has what docker create's init
# layer adds, with other metadata: etc/ 0750 12:34, etc/{hosts,hostname,
# resolv.conf,mtab} with content, dev/ 0711 with dev/keep, proc/ sys/ 0555,
# .dockerenv with content; and etc/other, an ordinary file.
T=$WORK/tree-init-shadow; rm -rf "$T"; mkdir -p "$T/etc" "$T/dev" "$T/proc" "$T/sys"
echo '127.0.0.1 from-the-image' >"$T/etc/hosts"
echo image-hostname >"$T/etc/hostname"
echo 'nameserver 192.0.2.1' >"$T/etc/resolv.conf"
echo 'regular mtab' >"$T/etc/mtab"
echo other >"$T/etc/other"
echo keep >"$T/dev/keep"
echo image-dockerenv >"$T/.dockerenv"
chown 12:34 "$T/etc"; chmod 0750 "$T/etc"; chmod 0711 "$T/dev"; chmod 0555 "$T/proc" "$T/sys"
import_tree init-shadow "$T"; CASES+=(init-shadow)

# workdir-missing: the config's WorkingDir (/srv/made/by/create) is in no
# layer, only its parent srv/ is; `docker create` makes the rest in the
# container's RW layer.
T=$WORK/tree-workdir-missing; rm -rf "$T"; mkdir -p "$T/srv"
echo 'no workdir in the layers' >"$T/srv/file"
import_tree workdir-missing "$T" --change 'WORKDIR /srv/made/by/create'; CASES+=(workdir-missing)


# workdir: WORKDIR on a path the base lacks (Docker makes srv/, srv/app/,
# srv/app/deep/ in a layer of its own), then a RUN writing into /etc and
# into the workdir.
build workdir <<'EOF'
FROM flatten-test/recipe-base
WORKDIR /srv/app/deep
RUN ["/recipe-run", "write", "/etc/recipe.conf", "written by RUN", "write", "here", "in the workdir"]
EOF

# workdir-existing: WORKDIR on directories the base has (/etc, then /tmp),
# each followed by a RUN writing into it.
build workdir-existing <<'EOF'
FROM flatten-test/recipe-base
WORKDIR /etc
RUN ["/recipe-run", "write", "recipe.conf", "written by RUN in WORKDIR /etc"]
WORKDIR /tmp
RUN ["/recipe-run", "write", "t", "written by RUN in WORKDIR /tmp"]
EOF

# ---------------------------------------------------------------- outputs
refs=(flatten-test/recipe-base:latest)
for c in "${CASES[@]}"; do refs+=("flatten-test/$c:latest"); done
log "save images.tar"
d save -o "$OUT/images.tar" "${refs[@]}"

created=()
for c in "${CASES[@]}"; do
    log "export $c"
    cid=$(d create "flatten-test/$c:latest")
    created+=("$c: $(d inspect -f '{{.Created}}' "$cid")")
    d export -o "$OUT/$c.export.tar" "$cid"
    d rm "$cid" >/dev/null
done

python3 "$MAKE_DIR/describe.py" docker-save "$OUT/images.tar" >"$OUT/layers.txt"
{
    echo "######## getfattr of the user-xattrs source tree"
    sed "s|$WORK/tree-user-xattrs|.|" "$WORK/user-xattrs.getfattr"
} >>"$OUT/layers.txt"

{
    echo "made by: testdata/make/docker_recipe.sh"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "docker server: $(d version --format '{{.Server.Version}}')"
    echo "docker client: $(d version --format '{{.Client.Version}}')"
    echo "storage driver: $DRIVER"
    echo "builder: classic (DOCKER_BUILDKIT=0)"
    echo "musl-tools: $(dpkg-query -W -f '${Version}' musl-tools)"
    echo "tar: $(tar --version | head -1)"
    echo "kernel: $(uname -r)"
    echo "images: ${refs[*]}"
    echo "container creation times (docker inspect .Created) of the exports:"
    printf '  %s\n' "${created[@]}"
} >"$OUT/BUILD-INFO.txt"

chmod 0644 "$OUT"/*
stop_daemon
log "docker-recipe done"
