#!/usr/bin/env bash
# Makes hello.tar, the README's example: the two-layer image of the seed article
# (shared/seeds/002), built FROM scratch by Docker and saved with `docker save`.
# Needs a running Docker daemon (DOCKER_HOST may point at a private one).
set -euo pipefail
cd "$(dirname "$0")"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
echo 'Hello, world!' > "$ctx/hello.txt"
echo 'hogehoge' > "$ctx/hoge.txt"
printf 'FROM scratch\nADD hello.txt /hello.txt\n' > "$ctx/Dockerfile.v1"
printf 'FROM flatten-example/hello:v1\nADD hoge.txt /hoge.txt\n' > "$ctx/Dockerfile.v2"
docker build --network none -q -t flatten-example/hello:v1 -f "$ctx/Dockerfile.v1" "$ctx"
docker build --network none -q -t flatten-example/hello:v2 -f "$ctx/Dockerfile.v2" "$ctx"
docker save -o hello.tar flatten-example/hello:v2
chmod 644 hello.tar
docker rmi flatten-example/hello:v2 flatten-example/hello:v1 >/dev/null
