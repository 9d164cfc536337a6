# Sourced by the compose scripts: sets compose to the Compose command this
# machine has ("docker compose", else docker-compose), or exits 4, and
# defines c, which runs it on $project and $file. Needs DOCKER and say.
if "$DOCKER" compose version >/dev/null 2>&1; then
	compose=("$DOCKER" compose)
elif command -v docker-compose >/dev/null 2>&1; then
	compose=(docker-compose)
else
	say "neither 'docker compose' nor docker-compose is installed (apt-get install -y docker-compose)"
	exit 4
fi
c() { "${compose[@]}" -p "$project" -f "$file" "$@"; }
