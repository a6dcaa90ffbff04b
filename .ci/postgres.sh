#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the tests and prints `export CLOUDMEMORY_TEST_POSTGRES=...`.
# Usage: eval "$(.ci/postgres.sh start DIR)"   ...   .ci/postgres.sh stop DIR   (stop also removes DIR)
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?data directory}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
bin=$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | tail -n1)")
case "$cmd" in
  start)
    mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$dir/data" -U cloudmemory --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -h 127.0.0.1 -k $dir -c fsync=off -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
    as_pg "$(command -v psql || echo $bin/psql)" -h 127.0.0.1 -p "$port" -U cloudmemory -d postgres -qc "CREATE DATABASE cloudmemory" >/dev/null
    echo "export CLOUDMEMORY_TEST_POSTGRES='Host=127.0.0.1;Port=$port;Username=cloudmemory;Database=cloudmemory;Maximum Pool Size=100'"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
esac
