#!/usr/bin/env bash
# Run docker-compose.test.yml: bring it up, wait for health, run the harness
# (the eventbus gate against two reference services by URL), tear everything
# down with `down -v` whatever happens, check nothing is left behind, and exit
# with the harness's code.
#
# Until the harness image has `harness serve` and `harness run --gate`, only
# Redis (AOF) and Toxiproxy are brought up and checked (PING through the
# proxy), and the script says so.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
: "${DOCKER:=docker}"
: "${HARNESS_IMAGE:=gonogo/harness:latest}"
: "${HEALTH_TIMEOUT:=120}"
file=docker-compose.test.yml
project="gonogo-test-$$"
export HOST_UID="${HOST_UID:-$(id -u)}" HOST_GID="${HOST_GID:-$(id -g)}"

say() { echo "compose-test: $*" >&2; }

if "$DOCKER" compose version >/dev/null 2>&1; then
	compose=("$DOCKER" compose)
elif command -v docker-compose >/dev/null 2>&1; then
	compose=(docker-compose)
else
	say "neither 'docker compose' nor docker-compose is installed (apt-get install -y docker-compose)"
	exit 4
fi
c() { "${compose[@]}" -p "$project" -f "$file" "$@"; }

# leftovers prints what the project still owns: containers, networks, volumes.
leftovers() {
	local f="label=com.docker.compose.project=$project"
	"$DOCKER" ps -aq --filter "$f"
	"$DOCKER" network ls -q --filter "$f"
	"$DOCKER" volume ls -q --filter "$f"
}

# Exit codes: the harness's own when it ran; 2 when interrupted; 4 when the
# stack itself failed (never 1, which would read as NO-GO).
ran=0 interrupted=0
teardown() {
	local code=$?
	trap - EXIT INT TERM
	if [ "$code" != 0 ] && [ "$ran" = 0 ] && [ "$interrupted" = 0 ]; then
		code=4
	fi
	c down -v --remove-orphans >/dev/null 2>&1 || true
	if [ -n "$(leftovers)" ]; then
		say "left behind after down -v:"
		leftovers >&2
		code=4
	fi
	exit "$code"
}
trap teardown EXIT
trap 'interrupted=1; exit 2' INT TERM

# wait_healthy SERVICE... polls the engine's health status of each service.
wait_healthy() {
	local svc id status deadline=$((SECONDS + HEALTH_TIMEOUT))
	for svc in "$@"; do
		while :; do
			id="$(c ps -q "$svc")"
			status="$([ -n "$id" ] && "$DOCKER" inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id" || echo missing)"
			case "$status" in
			running/healthy) break ;;
			exited/* | dead/* | missing)
				say "$svc is $status"
				c logs --tail 20 "$svc" >&2 || true
				return 4
				;;
			esac
			if [ "$SECONDS" -ge "$deadline" ]; then
				say "$svc not healthy within ${HEALTH_TIMEOUT}s ($status)"
				c logs --tail 20 "$svc" >&2 || true
				return 4
			fi
			sleep 0.5
		done
		say "$svc healthy"
	done
}

mkdir -p reports
# What does this harness build offer: `serve` (the reference service) and
# `run --gate` (gates against services by URL)?
serve=0 gate=0
help="$("$DOCKER" run --rm "$HARNESS_IMAGE" help 2>&1 || true)"
runhelp="$("$DOCKER" run --rm "$HARNESS_IMAGE" run -h 2>&1 || true)"
if grep -qE '^  serve ' <<<"$help"; then
	serve=1
fi
if grep -qE -- '^  -gate ' <<<"$runhelp"; then
	gate=1
fi

if [ "$serve" = 1 ] && [ "$gate" = 1 ]; then
	c up -d service-a service-b
	wait_healthy redis toxiproxy service-a service-b
	set +e
	ran=1
	c run --rm harness
	code=$?
	set -e
	say "harness exited $code"
	exit "$code"
fi

# Smoke check while the gate is missing: the stack comes up healthy, Redis
# (AOF) answers through Toxiproxy, and each service serves from Redis.
if [ "$serve" = 1 ]; then
	say "$HARNESS_IMAGE has no 'run --gate' yet: checking the stack without the harness run"
	c up -d service-a service-b
	wait_healthy redis toxiproxy service-a service-b
else
	say "$HARNESS_IMAGE has no 'serve' nor 'run --gate' yet: checking Redis (AOF) and Toxiproxy only"
	c up -d redis toxiproxy
	wait_healthy redis toxiproxy
fi
pong="$(c exec -T redis redis-cli -h toxiproxy -p 26379 ping | tr -d '\r')"
aof="$(c exec -T redis redis-cli config get appendonly | tr -d '\r' | tail -1)"
if [ "$pong" != PONG ] || [ "$aof" != yes ]; then
	say "PING through toxiproxy answered '$pong', appendonly '$aof'; want PONG, yes"
	exit 4
fi
say "redis (appendonly $aof) answers PING through toxiproxy"
if [ "$serve" = 1 ]; then
	for svc in service-a service-b; do
		c exec -T "$svc" /probe http://127.0.0.1:8080/health '"mode":"redis"' ||
			{ say "$svc does not serve from Redis"; exit 4; }
		say "$svc serves from redis through toxiproxy"
	done
fi
