#!/usr/bin/env bash
# The official postgres image's entrypoint contract, re-implemented for the offline image: on an empty PGDATA,
# initdb (scram-sha-256 for TCP), create POSTGRES_DB, run /docker-entrypoint-initdb.d/* against a server that
# listens on the socket only, then start the real server. Starts as root only to own PGDATA, then drops to postgres.
set -Eeuo pipefail

# VAR or VAR_FILE (Docker secrets), never both.
file_env() {
    local var=$1 file_var="${1}_FILE" def=${2:-}
    if [ "${!var:-}" ] && [ "${!file_var:-}" ]; then
        echo >&2 "postgres entrypoint: both $var and $file_var are set. Fix: set only one of them."
        exit 1
    fi
    local val=$def
    if [ "${!var:-}" ]; then val=${!var}; elif [ "${!file_var:-}" ]; then val=$(<"${!file_var}"); fi
    export "$var"="$val"
    unset "$file_var"
}

setup_env() {
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
    DATABASE_ALREADY_EXISTS=
    if [ -s "$PGDATA/PG_VERSION" ]; then DATABASE_ALREADY_EXISTS=true; fi
}

verify_minimum_env() {
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        cat >&2 <<'MSG'
postgres entrypoint: the database is uninitialized and no superuser password is set.
Fix: set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value.
MSG
        exit 1
    fi
}

init_database_dir() {
    local pwfile
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host="$POSTGRES_HOST_AUTH_METHOD" --encoding=UTF8 $POSTGRES_INITDB_ARGS >/dev/null
    rm -f "$pwfile"
    printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

psql_init() {
    PGPASSWORD= psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

run_init_files() {
    local f
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then echo "postgres entrypoint: running $f"; "$f"
                else echo "postgres entrypoint: sourcing $f"; . "$f"; fi ;;
            *.sql) echo "postgres entrypoint: running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) echo "postgres entrypoint: running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB" ;;
            *) if [ -e "$f" ]; then echo "postgres entrypoint: ignoring $f"; fi ;;
        esac
    done
}

initialize() {
    verify_minimum_env
    init_database_dir
    # Socket-only temporary server: nothing can connect over TCP before initialisation has finished.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    export PGHOST=/var/run/postgresql PGPORT=5432 PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB"
    if [ "$POSTGRES_DB" != postgres ]; then
        psql_init --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    run_init_files
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGHOST PGPORT PGUSER PGDATABASE
    echo "postgres entrypoint: initialisation complete; ready for start up."
}

main() {
    if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
    if [ "$1" != postgres ]; then exec "$@"; fi
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$PGDATA" /var/run/postgresql
        chmod 00700 "$PGDATA"
        chown -R postgres:postgres "$PGDATA" /var/run/postgresql
        exec gosu postgres "$BASH_SOURCE" "$@"
    fi
    setup_env
    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then initialize; fi
    exec "$@"
}

main "$@"
