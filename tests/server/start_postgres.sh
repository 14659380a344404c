#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests on 127.0.0.1 (and a unix
# socket in its directory) and prints its URL as the last line of stdout:
#
#   export GLASSBOX_TEST_PG_URL=$(bash tests/server/start_postgres.sh)
#   ...run the tests...
#   bash tests/server/start_postgres.sh stop
#
# Needs Debian's `postgresql` package (the server binaries under
# /usr/lib/postgresql/<version>/bin). As root it runs the server as the
# `postgres` user (initdb refuses root). Every step is bounded by a timeout,
# so it never hangs. GLASSBOX_PG_PORT (default 55432) and GLASSBOX_PG_DIR
# (default /tmp/glassbox-pg-<port>) override the port and data directory.
set -euo pipefail

port="${GLASSBOX_PG_PORT:-55432}"
dir="${GLASSBOX_PG_DIR:-/tmp/glassbox-pg-$port}"
db=glassbox_test

bin=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
  [ -x "$candidate/initdb" ] && bin="$candidate"
done
if [ -z "$bin" ]; then
  echo "start_postgres.sh: no PostgreSQL server found (apt-get install postgresql)" >&2
  exit 1
fi

# Run a command as the server's user: postgres when we are root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

stop_server() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner timeout 30 "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
  fi
}

if [ "${1:-start}" = stop ]; then
  stop_server
  rm -rf "$dir"
  exit 0
fi

stop_server
rm -rf "$dir"
mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "start_postgres.sh: running as root but there is no 'postgres' user (is the postgresql package installed?)" >&2
    exit 1
  fi
  chown postgres: "$dir"
fi

if ! as_owner timeout 120 "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1; then
  echo "start_postgres.sh: initdb failed:" >&2
  cat "$dir/initdb.log" >&2
  exit 1
fi
# fsync off: a test server's data need not survive a power cut.
if ! as_owner timeout 60 "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 45 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null; then
  echo "start_postgres.sh: the server did not start:" >&2
  cat "$dir/server.log" >&2 || true
  exit 1
fi
if ! as_owner timeout 30 "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db" >/dev/null 2>&1; then
  echo "start_postgres.sh: createdb failed" >&2
  cat "$dir/server.log" >&2 || true
  exit 1
fi
echo "postgresql://postgres@127.0.0.1:$port/$db"
