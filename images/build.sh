#!/usr/bin/env bash
# Build the gonogo images with no registry: every image is FROM scratch with a
# root prepared here, so nothing is ever pulled.
#
#   images/build.sh [redis|toxiproxy|harness]...   (default: all three)
#
#   gonogo/redis:7      the machine's redis-server and redis-cli, the shared
#                       libraries ldd lists, their loader, /etc/passwd, /tmp, /data
#   gonogo/toxiproxy    static build of github.com/Shopify/toxiproxy/v2/cmd/server
#                       at the version go.mod requires, plus /probe
#   gonogo/harness      static build of ./cmd/harness, plus /probe
#
# Idempotent and fast on re-run: each image carries a label with the sha256 of
# its build context; an image whose label matches is not rebuilt.
# Names can be overridden: REDIS_IMAGE, TOXIPROXY_IMAGE, HARNESS_IMAGE.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
: "${GO:=go}"
: "${DOCKER:=docker}"
: "${REDIS_IMAGE:=gonogo/redis:7}"
: "${TOXIPROXY_IMAGE:=gonogo/toxiproxy:latest}"
: "${HARNESS_IMAGE:=gonogo/harness:latest}"
: "${REDIS_SERVER:=$(command -v redis-server || true)}"
: "${REDIS_CLI:=$(command -v redis-cli || true)}"
label=org.gonogo.inputs

work="$(mktemp -d "${TMPDIR:-/tmp}/gonogo-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say() { echo "images: $*" >&2; }
die() { say "$*"; exit 4; }

# gobuild OUT ARGS... builds a static, reproducible Go binary. One retry:
# on a busy shared tree a build can fail transiently ("could not import").
gobuild() {
	local out=$1
	shift
	CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags='-s -w' -o "$out" "$@" ||
		{ say "go build $* failed; retrying once"; CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags='-s -w' -o "$out" "$@"; }
}

# build IMAGE CTX: docker build CTX unless the image's input label already
# matches the context's digest.
build() {
	local image=$1 ctx=$2 sum have old
	sum="$(tar -C "$ctx" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . | sha256sum | cut -c1-32)"
	have="$("$DOCKER" image inspect -f "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)"
	if [ "$have" = "$sum" ]; then
		say "$image up to date"
		return
	fi
	old="$("$DOCKER" image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
	say "building $image"
	DOCKER_BUILDKIT=0 "$DOCKER" build -q --label "$label=$sum" -t "$image" "$ctx" >/dev/null 2>"$work/build.err" ||
		{ cat "$work/build.err" >&2; die "docker build $image failed"; }
	# Drop the image this one replaces (kept if a container still uses it).
	if [ -n "$old" ] && [ "$old" != "$("$DOCKER" image inspect -f '{{.Id}}' "$image")" ]; then
		"$DOCKER" rmi "$old" >/dev/null 2>&1 || true
	fi
}

# write_passwd DIR writes a minimal /etc/passwd and /etc/group (root, redis 999, nobody).
write_passwd() {
	mkdir -p "$1/etc"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nredis:x:999:999:redis:/data:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$1/etc/passwd"
	printf 'root:x:0:\nredis:x:999:\nnogroup:x:65534:\n' >"$1/etc/group"
}

build_redis() {
	[ -x "$REDIS_SERVER" ] || die "redis-server not found: apt-get install -y redis-server redis-tools (or set REDIS_SERVER)"
	[ -x "$REDIS_CLI" ] || die "redis-cli not found: apt-get install -y redis-tools (or set REDIS_CLI)"
	local ctx="$work/redis" r="$work/redis/root" lib
	mkdir -p "$r/usr/bin" "$r/tmp" "$ctx/data"
	chmod 1777 "$r/tmp"
	# Debian's redis-server is a symlink to redis-check-rdb: copy the target
	# under the server's name (redis picks its mode from argv[0]).
	cp -L "$REDIS_SERVER" "$r/usr/bin/redis-server"
	cp -L "$REDIS_CLI" "$r/usr/bin/redis-cli"
	# Every library either binary needs, and the loader, at the paths ldd shows.
	for lib in $(ldd "$REDIS_SERVER" "$REDIS_CLI" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && NF > 1 {print $1}' | sort -u); do
		mkdir -p "$r$(dirname "$lib")"
		cp -L "$lib" "$r$lib"
	done
	write_passwd "$r"
	cat >"$ctx/Dockerfile" <<-'EOF'
		FROM scratch
		COPY root/ /
		COPY --chown=999:999 data/ /data/
		ENV PATH=/usr/bin
		USER 999:999
		WORKDIR /data
		EXPOSE 6379
		ENTRYPOINT ["redis-server"]
		CMD ["--protected-mode", "no", "--dir", "/data"]
	EOF
	build "$REDIS_IMAGE" "$ctx"
}

build_probe() { gobuild "$1/probe" ./images/probe; }

build_toxiproxy() {
	local ctx="$work/toxiproxy" version
	mkdir -p "$ctx/tmp"
	chmod 1777 "$ctx/tmp"
	version="$("$GO" list -m -f '{{.Version}}' github.com/Shopify/toxiproxy/v2)"
	# go install pkg@version builds in the module's own context (module cache,
	# or the Go module proxy), independent of this module's go.mod state.
	CGO_ENABLED=0 GOBIN="$ctx/bin" "$GO" install -trimpath \
		-ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=${version#v}" \
		"github.com/Shopify/toxiproxy/v2/cmd/server@$version"
	mv "$ctx/bin/server" "$ctx/toxiproxy"
	rmdir "$ctx/bin"
	build_probe "$ctx"
	write_passwd "$ctx"
	cat >"$ctx/Dockerfile" <<-EOF
		FROM scratch
		COPY etc/ /etc/
		COPY tmp/ /tmp/
		COPY toxiproxy probe /
		USER 65534:65534
		EXPOSE 8474
		LABEL org.gonogo.toxiproxy.version=$version
		ENTRYPOINT ["/toxiproxy", "-host", "0.0.0.0"]
	EOF
	build "$TOXIPROXY_IMAGE" "$ctx"
}

build_harness() {
	local ctx="$work/harness"
	mkdir -p "$ctx/tmp" "$ctx/etc/ssl/certs"
	chmod 1777 "$ctx/tmp"
	gobuild "$ctx/harness" ./cmd/harness
	build_probe "$ctx"
	write_passwd "$ctx"
	# CA bundle for rediss:// targets (Upstash), when the machine has one.
	if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
		cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/"
	fi
	cat >"$ctx/Dockerfile" <<-'EOF'
		FROM scratch
		COPY etc/ /etc/
		COPY tmp/ /tmp/
		COPY harness probe /
		ENV TMPDIR=/tmp
		EXPOSE 8080
		ENTRYPOINT ["/harness"]
	EOF
	build "$HARNESS_IMAGE" "$ctx"
}

command -v "$DOCKER" >/dev/null 2>&1 || die "docker not found"
"$DOCKER" version -f '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker engine answers (is dockerd running?)"
[ $# -gt 0 ] || set -- redis toxiproxy harness
for what in "$@"; do
	case "$what" in
	redis | toxiproxy | harness) "build_$what" ;;
	*) die "unknown image $what (want redis, toxiproxy or harness)" ;;
	esac
done
