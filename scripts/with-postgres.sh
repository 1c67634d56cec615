#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL 15 server: `initdb` as a non-root user into a temp
# directory, listening on 127.0.0.1 only (no Unix socket in a shared place), stopped and removed at
# the end whatever happens (the command's exit code is kept). The command sees
# BOOKWATCH_TEST_POSTGRES_URL=postgres://bookwatch:PASSWORD@127.0.0.1:PORT/bookwatch and
# BOOKWATCH_REQUIRE_POSTGRES=1 (the store conformance tests then fail rather than skip PostgreSQL),
# and BOOKWATCH_PG_DATA (the data directory, for tests that stop and start the server).
# Usage: scripts/with-postgres.sh command [args...]
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: with-postgres.sh command [args...]" >&2; exit 2; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || ! command -v initdb >/dev/null 2>&1 || bin=$(dirname "$(command -v initdb)")
[ -n "$bin" ] && [ -x "$bin/initdb" ] || {
    echo "with-postgres: PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/install-deps.sh, or apt-get install postgresql" >&2
    exit 1
}

# initdb refuses to run as root: run the server as an unprivileged user.
run_as=()
if [ "$(id -u)" = 0 ]; then
    user=postgres
    id "$user" > /dev/null 2>&1 || { useradd --system --no-create-home --shell /usr/sbin/nologin bookwatch-pg; user=bookwatch-pg; }
    run_as=(runuser -u "$user" --)
fi

dir=$(mktemp -d /tmp/bookwatch-pg.XXXXXX)
chmod 755 "$dir"
data="$dir/data"
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" > "$dir/pw"
[ ${#run_as[@]} -eq 0 ] || chown -R "$user" "$dir"

stop() {
    "${run_as[@]}" "$bin/pg_ctl" -D "$data" -m immediate stop > /dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT INT TERM

"${run_as[@]}" "$bin/initdb" -D "$data" -U bookwatch --pwfile="$dir/pw" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 > "$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
# The port is drawn free below the ephemeral range (scripts/free-port.py); another process can
# still take it before the server binds, so a start that fails is tried again on a new port.
here=$(cd "$(dirname "$0")" && pwd)
for attempt in 1 2 3 4 5; do
    port=${BOOKWATCH_PG_PORT:-$("$here/free-port.py" 10000 20000)}
    if "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=on" start > /dev/null; then
        break
    fi
    if [ "$attempt" = 5 ] || [ -n "${BOOKWATCH_PG_PORT:-}" ] || ! grep -q "Address already in use" "$dir/server.log"; then
        cat "$dir/server.log" >&2
        exit 1
    fi
    echo "with-postgres: port $port was taken, trying another" >&2
    "${run_as[@]}" "$bin/pg_ctl" -D "$data" -m immediate stop > /dev/null 2>&1 || true
    : > "$dir/server.log"
done
PGPASSWORD="$password" "$bin/createdb" -h 127.0.0.1 -p "$port" -U bookwatch bookwatch

export BOOKWATCH_TEST_POSTGRES_URL="postgres://bookwatch:$password@127.0.0.1:$port/bookwatch"
export BOOKWATCH_REQUIRE_POSTGRES=1
export BOOKWATCH_PG_DATA="$data"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $data)" >&2
set +e
"$@"
status=$?
set -e
exit "$status"
