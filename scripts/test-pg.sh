#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of cluster mode.
#
#   scripts/test-pg.sh run CMD...   start a cluster, run CMD with DUCKCRON_TEST_PG set to
#                                   its URL, stop it and delete it (whatever CMD does)
#   scripts/test-pg.sh ctl ARGS...  pg_ctl ARGS against the cluster `run` started (tests
#                                   stop and restart the database with it)
#
# DUCKCRON_TEST_PG already set (a URL, or `off` to skip the cluster tests on purpose)
# makes `run` use it as it is. Debian's server binaries live under
# /usr/lib/postgresql/<version>/bin (package `postgresql`); they refuse to run as root,
# so as root the cluster belongs to the `postgres` user the package creates.
set -euo pipefail

pg_bin() {
  local dir
  if [ -n "${DUCKCRON_TEST_PG_BIN:-}" ]; then
    echo "$DUCKCRON_TEST_PG_BIN"
    return
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ]; then
      echo "$dir"
      return
    fi
  done
  echo "test-pg: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; install the Debian package postgresql, or set DUCKCRON_TEST_PG=off to skip the cluster tests" >&2
  exit 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
run)
  if [ -n "${DUCKCRON_TEST_PG:-}" ]; then
    exec "$@"
  fi
  bin="$(pg_bin)"
  dir="$(mktemp -d -t duckcron-pg.XXXXXX)"
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port="$(node -e 'const s=require("node:net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  # fsync off: the tests restart the server, they never pull the plug on the machine.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -s \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" start
  stop() {
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -s stop >/dev/null 2>&1 || true
    rm -rf "$dir"
  }
  trap stop EXIT
  export DUCKCRON_TEST_PG="postgres://postgres@127.0.0.1:$port/postgres"
  export DUCKCRON_TEST_PG_DATA="$dir/data"
  export DUCKCRON_TEST_PG_BIN="$bin"
  export DUCKCRON_TEST_PG_PORT="$port"
  status=0
  "$@" || status=$?
  exit "$status"
  ;;
ctl)
  if [ -z "${DUCKCRON_TEST_PG_DATA:-}" ]; then
    echo "test-pg: no cluster started by scripts/test-pg.sh run" >&2
    exit 1
  fi
  bin="$(pg_bin)"
  dir="$(dirname "$DUCKCRON_TEST_PG_DATA")"
  if [ "${1:-}" = start ]; then
    shift
    as_owner "$bin/pg_ctl" -D "$DUCKCRON_TEST_PG_DATA" -l "$dir/server.log" -w -s \
      -o "-c listen_addresses=127.0.0.1 -p $DUCKCRON_TEST_PG_PORT -k $dir -c fsync=off -c max_connections=300" start "$@"
  else
    as_owner "$bin/pg_ctl" -D "$DUCKCRON_TEST_PG_DATA" -w -s "$@"
  fi
  ;;
*)
  echo "usage: scripts/test-pg.sh run CMD... | ctl ARGS..." >&2
  exit 2
  ;;
esac
