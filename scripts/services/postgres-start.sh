#!/bin/sh
# Start a throw-away PostgreSQL on 127.0.0.1:$PGPORT (trust auth, data in /tmp).
set -eu
data="${PGDATA:-/tmp/pgdata}"
/usr/lib/postgresql/15/bin/initdb --pgdata="$data" --username=postgres --auth=trust >/dev/null
exec /usr/lib/postgresql/15/bin/postgres -D "$data" -h 127.0.0.1 -p "$PGPORT" -k /tmp \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off
