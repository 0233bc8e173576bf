#!/bin/bash
# Regenerate everything under testdata/ (as root, Debian, ~2 minutes).
# Order matters: skopeo.sh converts what docker.sh saved.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
own_work=""
if [ -z "${WORK:-}" ]; then WORK=$(mktemp -d -t flatten-testdata.XXXXXX); own_work=1; fi
export WORK
bash "$here/docker.sh"
bash "$here/skopeo.sh"
bash "$here/umoci.sh"
bash "$here/spec.sh"
bash "$here/tarforms.sh"
[ -n "$own_work" ] && rm -rf "$WORK"
du -sh "$here/.."
