#!/usr/bin/env bash
# A sharded benchmark on this machine (docker-compose.bench.yml): one Redis,
# the bench service scaled to SHARDS replicas (default 3), each running its
# share of the load; the shares' files land in reports/shards/<run>/ and
# `harness report merge` merges them (histograms merged, not averaged).
# Everything is torn down (`down -v`) whatever happens. Images are built
# locally first (images/build.sh redis, and gonogo/bench: that image with
# the harness added; nothing pulled).
#
#   SHARDS=3 BENCH_RATE=3000 BENCH_DURATION=20s images/bench-sharded.sh
#
# Exit: the merge's code (0, 2 when a share's row is inconclusive); 4 when
# the stack or a share failed.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
: "${DOCKER:=docker}"
: "${GO:=go}"
: "${SHARDS:=3}"
: "${BENCH_RATE:=3000}"
: "${BENCH_DURATION:=20s}"
: "${BENCH_TIMEOUT:=600}"
: "${BENCH_IMAGE:=gonogo/bench:latest}"
file=docker-compose.bench.yml
project="gonogo-bench-$$"
export SHARDS BENCH_RATE BENCH_DURATION BENCH_IMAGE
export SHARD_RUN="$project-$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')"
export SHARD_DIR="$root/reports/shards/$SHARD_RUN"
export HOST_UID="${HOST_UID:-$(id -u)}" HOST_GID="${HOST_GID:-$(id -g)}"

say() { echo "bench-sharded: $*" >&2; }

# shellcheck source=images/compose-lib.sh
. images/compose-lib.sh

teardown() {
	local code=$?
	trap - EXIT INT TERM
	c down -v --remove-orphans >/dev/null 2>&1 || true
	exit "$code"
}
trap teardown EXIT
trap 'exit 2' INT TERM

# The bench image: the redis image (local) with the harness on top. A
# share on a url target calibrates its command estimate against a local
# redis-server before any traffic, so it needs one next to it.
./images/build.sh redis
ctx="$(mktemp -d "${TMPDIR:-/tmp}/gonogo-bench-image.XXXXXX")"
CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags='-s -w' -o "$ctx/harness" ./cmd/harness
printf 'FROM %s\nCOPY harness /usr/bin/harness\nENTRYPOINT ["/usr/bin/harness"]\n' "${REDIS_IMAGE:-gonogo/redis:7}" >"$ctx/Dockerfile"
DOCKER_BUILDKIT=0 "$DOCKER" build -q -t "$BENCH_IMAGE" "$ctx" >/dev/null
rm -rf "$ctx"
mkdir -p "$SHARD_DIR"
say "run $SHARD_RUN: $SHARDS shares of $BENCH_RATE publishes/s for $BENCH_DURATION"
c up -d --scale "bench=$SHARDS" >/dev/null
deadline=$((SECONDS + BENCH_TIMEOUT))
while [ -n "$(c ps -q bench | xargs -r "$DOCKER" inspect -f '{{if .State.Running}}{{.Id}}{{end}}' | tr -d '\n')" ]; do
	if [ "$SECONDS" -ge "$deadline" ]; then
		say "the shares did not finish within ${BENCH_TIMEOUT}s"
		exit 4
	fi
	sleep 1
done
failed=0
for id in $(c ps -q bench); do
	code="$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$id")"
	# 2 (a row inconclusive) is a measurement still: the merge says so.
	if [ "$code" != 0 ] && [ "$code" != 2 ]; then
		say "share container ${id:0:12} exited $code:"
		"$DOCKER" logs --tail 20 "$id" >&2 || true
		failed=1
	fi
done
[ "$failed" = 0 ] || exit 4
set +e
"$GO" run ./cmd/harness report merge "$SHARD_DIR"
code=$?
set -e
say "merged $(ls "$SHARD_DIR" | wc -l) shares from $SHARD_DIR (exit $code)"
exit "$code"
