# Shared helpers for the testdata generators. Sourced, not run.
# Everything is written relative to the testdata/ directory that holds
# this make/ directory; scratch files go to $WORK (a fresh mktemp dir
# unless the caller sets WORK).

MAKE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTDATA=$(dirname "$MAKE_DIR")
: "${WORK:=$(mktemp -d -t flatten-testdata.XXXXXX)}"
export WORK
mkdir -p "$WORK"

# Fixed clock for everything we create ourselves (not for what Docker
# stamps on its own files).
export SOURCE_DATE_EPOCH=1700000000
export TZ=UTC LC_ALL=C

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (needs mknod, chown, docker)"; }

install_tools() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        apt-get update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Deterministic tar of a directory (GNU tar, numeric owners, sorted,
# xattrs kept).  usage: det_tar DIR OUT.tar
det_tar() {
    tar --sort=name --numeric-owner --xattrs --xattrs-include='*' \
        --format=pax --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        -C "$1" -cf "$2" .
}
