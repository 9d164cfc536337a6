#!/usr/bin/env bash
# The tracker's FastAPI layer under the harness, judged by URL: a process
# redis-server (AOF, as TASK-001 runs it), Toxiproxy (the module's own
# server, on loopback) with the proxy "redis" in front of it, two uvicorn
# instances reaching Redis through that proxy, and `harness run --service`
# running the gate against them; with `--instance-cmd "python3 serve.py"`
# the harness starts, stops, kills and pauses uvicorn instances of its own
# for the instance scenarios (serve.py reads where to serve from
# HARNESS_ADDR). Everything started here is stopped on exit,
# whatever happens (checked: a process still alive afterwards is exit 4).
#
#   examples/fastapi/gate.sh              GATE (eventbus) against the plan as written
#   GONOGO_FIXES=keepalive examples/fastapi/gate.sh   only the socket-option fix
#   GONOGO_FIXES=all examples/fastapi/gate.sh         the fixed layer (app/fixed)
#   SCENARIO=instance_rolling_deploy examples/fastapi/gate.sh   scenarios instead of a gate
#   INSTANCE_CMD= examples/fastapi/gate.sh            without instance processes (the
#       instance scenarios are then INCONCLUSIVE)
#   REDIS_MODE=container examples/fastapi/gate.sh     Redis and Toxiproxy as containers
#       (docker-compose.test.yml, profile fastapi; images from `make images`):
#       the harness can then kill, pause and restart Redis (kill_aof, pause, ...)
#
# Needs bin/harness and bin/toxiproxy (make fastapi-test builds them),
# redis-server, and /usr/bin/python3 with python3-fastapi, python3-uvicorn
# and python3-redis (make fastapi-deps). Exit: the harness's code (0 GO,
# 1 NO-GO, 2 INCONCLUSIVE or interrupted, 3 bad input, 4 harness or stack
# failure).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
: "${GATE:=eventbus}"
: "${REPORT_DIR:=$root/reports}"
: "${HARNESS:=$root/bin/harness}"
: "${TOXIPROXY:=$root/bin/toxiproxy}"
: "${PYTHON:=/usr/bin/python3}"
: "${REDIS_SERVER:=redis-server}"
: "${HEALTH_TIMEOUT:=30}"
: "${REDIS_MODE:=process}"
: "${DOCKER:=docker}"
# The harness splits it on spaces: no space in the paths.
: "${INSTANCE_CMD=$PYTHON $here/serve.py}"
export GONOGO_FIXES="${GONOGO_FIXES:-}"

say() { echo "fastapi-test: $*" >&2; }

for bin in "$HARNESS" "$TOXIPROXY" "$PYTHON"; do
	[ -x "$bin" ] || { say "$bin missing (make fastapi-test builds and installs what it needs)"; exit 4; }
done
case "$REDIS_MODE" in
process) command -v "$REDIS_SERVER" >/dev/null || { say "redis-server missing (make deps)"; exit 4; } ;;
container)
	command -v docker-compose >/dev/null || { say "docker-compose missing (apt-get install -y docker-compose)"; exit 4; }
	for img in "${REDIS_IMAGE:-gonogo/redis:7}" "${TOXIPROXY_IMAGE:-gonogo/toxiproxy:latest}"; do
		"$DOCKER" image inspect "$img" >/dev/null 2>&1 || { say "image $img missing (make images)"; exit 4; }
	done
	;;
*) say "REDIS_MODE $REDIS_MODE: want process or container"; exit 3 ;;
esac
"$PYTHON" -c 'import fastapi, uvicorn, redis.asyncio' 2>/dev/null ||
	{ say "$PYTHON cannot import fastapi, uvicorn and redis (make fastapi-deps)"; exit 4; }

work="$(mktemp -d "${TMPDIR:-/tmp}/gonogo-fastapi.XXXXXX")"
touch "$work/started"
pids=()
ran=0
project="gonogo-fastapi-$$"
compose() { docker-compose -p "$project" -f "$root/docker-compose.test.yml" --profile fastapi "$@"; }
# leftovers prints what the compose project still owns.
leftovers() {
	local f="label=com.docker.compose.project=$project"
	"$DOCKER" ps -aq --filter "$f"
	"$DOCKER" network ls -q --filter "$f"
	"$DOCKER" volume ls -q --filter "$f"
}

# stop PID...: SIGTERM, up to 10 s for a graceful stop, then SIGKILL; reaped.
stop() {
	local pid deadline
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	deadline=$((SECONDS + 10))
	for pid in "$@"; do
		while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

cleanup() {
	local code=$? pid left=""
	trap - EXIT INT TERM
	if [ "$code" != 0 ] && [ "$ran" = 0 ]; then code=4; fi
	# The services first (they unregister through Redis), then the proxy and Redis.
	[ "${#pids[@]}" -gt 0 ] && stop "${pids[@]}"
	for pid in "${pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then left="$left $pid"; fi
	done
	# The instances the harness started are its to stop: none may be left
	# (listed, not killed: they are not this script's).
	for pid in $(pgrep -f -- "$here/serve.py" 2>/dev/null); do
		[ "$pid" != $$ ] && left="$left $pid(instance)"
	done
	if [ -n "$left" ]; then
		say "still running after cleanup:$left"
		code=4
	fi
	if [ "$REDIS_MODE" = container ]; then
		compose down -v --remove-orphans >/dev/null 2>&1 || true
		if [ -n "$(leftovers)" ]; then
			say "left behind after down -v:"
			leftovers >&2
			code=4
		fi
	fi
	if [ "$code" != 0 ] && [ "$ran" = 0 ]; then
		for f in "$work"/*.log; do [ -f "$f" ] && { say "--- $f"; tail -20 "$f" >&2; }; done
	fi
	# The services' logs go into the run's directory (the newest one this
	# run made), next to its report.
	if [ "$ran" = 1 ]; then
		run_dir="$(find "$REPORT_DIR" -mindepth 1 -maxdepth 1 -type d -name '2*' -newer "$work/started" 2>/dev/null | sort | tail -1)"
		if [ -n "$run_dir" ] && mkdir -p "$run_dir/fastapi-logs"; then
			cp "$work"/*.log "$run_dir/fastapi-logs/" 2>/dev/null || true
			say "service logs: $run_dir/fastapi-logs"
		fi
	fi
	rm -rf "$work"
	exit "$code"
}
# interrupted: Ctrl-C or SIGTERM stops the harness the way it stops itself
# (it writes its report, marked INCOMPLETE; at most 60 s), then cleanup
# stops the rest. Exit 2.
hpid=""
interrupted() {
	trap - INT TERM
	say interrupted
	ran=1
	if [ -n "$hpid" ] && kill -0 "$hpid" 2>/dev/null; then
		kill -TERM "$hpid" 2>/dev/null || true
		local deadline=$((SECONDS + 60))
		while kill -0 "$hpid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
		kill -KILL "$hpid" 2>/dev/null || true
		wait "$hpid" 2>/dev/null || true
	fi
	exit 2
}
trap cleanup EXIT
trap interrupted INT TERM

# Five free loopback ports, chosen by the kernel.
read -r p_redis p_api p_proxy p_a p_b < <("$PYTHON" - <<'PY'
import socket
socks = []
for _ in range(5):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)

# One control token per run, for the services and the harness; never printed.
HARNESS_CONTROL_TOKEN="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
export HARNESS_CONTROL_TOKEN

container_flags=()
if [ "$REDIS_MODE" = process ]; then
	"$REDIS_SERVER" --bind 127.0.0.1 --port "$p_redis" --dir "$work" --save '' \
		--appendonly yes --appendfsync everysec >"$work/redis.log" 2>&1 &
	pids+=($!)
	cat >"$work/toxiproxy.json" <<-JSON
		[{"name": "redis", "listen": "127.0.0.1:$p_proxy", "upstream": "127.0.0.1:$p_redis", "enabled": true}]
	JSON
	"$TOXIPROXY" -host 127.0.0.1 -port "$p_api" -config "$work/toxiproxy.json" >"$work/toxiproxy.log" 2>&1 &
	pids+=($!)
else
	# The proxy listens on the port it is published on: the harness reaches
	# it at the API's host and the proxy's own port.
	cat >"$work/toxiproxy.json" <<-JSON
		[{"name": "redis", "listen": "0.0.0.0:$p_proxy", "upstream": "fastapi-redis:6379", "enabled": true}]
	JSON
	chmod 644 "$work/toxiproxy.json"
	export FASTAPI_REDIS_CONTAINER="$project-redis" FASTAPI_REDIS_PORT="$p_redis" FASTAPI_TOXIPROXY_PORT="$p_api" \
		FASTAPI_PROXY_PORT="$p_proxy" FASTAPI_TOXIPROXY_CONFIG="$work/toxiproxy.json"
	compose up -d fastapi-redis fastapi-toxiproxy >"$work/compose.log" 2>&1 || { say "compose up failed"; cat "$work/compose.log" >&2; exit 4; }
	container_flags=(--redis-container "$project-redis")
fi
select=(--gate "$GATE")
[ -n "${SCENARIO:-}" ] && select=(--scenario "$SCENARIO")
instance_flags=()
[ -n "$INSTANCE_CMD" ] && instance_flags=(--instance-cmd "$INSTANCE_CMD")

# wait_up URL: polls until URL answers 200 (HEALTH_TIMEOUT).
wait_up() {
	"$PYTHON" - "$1" "$HEALTH_TIMEOUT" <<'PY'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
print(f"{url} not up within {sys.argv[2]}s", file=sys.stderr)
sys.exit(4)
PY
}
wait_up "http://127.0.0.1:$p_api/version"
for inst in a:$p_a b:$p_b; do
	name=${inst%%:*} port=${inst#*:}
	HARNESS_CONTROL=true REDIS_ENABLED=true REDIS_URL="redis://127.0.0.1:$p_proxy/0" SERVER_ID="fastapi-$name" \
		"$PYTHON" "$here/serve.py" --host 127.0.0.1 --port "$port" >"$work/service-$name.log" 2>&1 &
	pids+=($!)
done
wait_up "http://127.0.0.1:$p_a/health"
wait_up "http://127.0.0.1:$p_b/health"
say "redis ($REDIS_MODE) 127.0.0.1:$p_redis, toxiproxy 127.0.0.1:$p_api (proxy redis 127.0.0.1:$p_proxy), services :$p_a :$p_b, GONOGO_FIXES=${GONOGO_FIXES:-none}"

mkdir -p "$REPORT_DIR"
set +e
ran=1
# In the background, so that a signal reaches the trap at once (bash runs a
# trap only once the foreground command is done).
"$HARNESS" run "${select[@]}" \
	--service "http://127.0.0.1:$p_a,http://127.0.0.1:$p_b" \
	--toxiproxy "http://127.0.0.1:$p_api" --toxiproxy-proxy redis \
	--url "redis://127.0.0.1:$p_redis/0" --report-dir "$REPORT_DIR" "${container_flags[@]}" "${instance_flags[@]}" &
hpid=$!
wait "$hpid"
code=$?
hpid=""
set -e
say "harness exited $code (0 GO, 1 NO-GO, 2 INCONCLUSIVE, 3 bad input, 4 harness failure)"
exit "$code"
