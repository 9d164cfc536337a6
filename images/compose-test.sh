#!/usr/bin/env bash
# Run docker-compose.test.yml: bring it up, wait for health, run the harness
# (the eventbus gate against two reference services by URL; PROFILE=seed runs
# them on the seed profile), tear everything down with `down -v` whatever
# happens, check nothing is left behind, and exit with the harness's code.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
: "${DOCKER:=docker}"
: "${HARNESS_IMAGE:=gonogo/harness:latest}"
: "${HEALTH_TIMEOUT:=120}"
file=docker-compose.test.yml
project="gonogo-test-$$"
export HOST_UID="${HOST_UID:-$(id -u)}" HOST_GID="${HOST_GID:-$(id -g)}"
# The harness kills, pauses and restarts Redis by this name through the
# Docker socket, as a member of the socket's group.
export REDIS_CONTAINER="$project-redis"
export DOCKER_GID="${DOCKER_GID:-$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)}"
# The services' control API token, the same for them and the harness; one per
# run unless given (never printed).
if [ -z "${HARNESS_CONTROL_TOKEN:-}" ]; then
	HARNESS_CONTROL_TOKEN="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
fi
export HARNESS_CONTROL_TOKEN

say() { echo "compose-test: $*" >&2; }

# shellcheck source=images/compose-lib.sh
. images/compose-lib.sh

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
# The harness image must put services under test by URL (`harness run
# --service`) and serve the reference service with its control API.
runhelp="$("$DOCKER" run --rm "$HARNESS_IMAGE" run -h 2>&1 || true)"
if ! grep -qE -- '^  -service ' <<<"$runhelp"; then
	say "$HARNESS_IMAGE has no 'run --service': rebuild it with 'make images'"
	exit 4
fi

c up -d service-a service-b
wait_healthy redis toxiproxy service-a service-b
set +e
ran=1
start=$SECONDS
c run --rm harness
code=$?
set -e
say "harness exited $code after $((SECONDS - start))s (0 GO, 1 NO-GO, 2 INCONCLUSIVE, 3 bad input, 4 harness failure)"
exit "$code"
