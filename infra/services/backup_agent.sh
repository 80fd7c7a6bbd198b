#!/bin/bash
# Kaizenity backup agent: continuous WAL streaming + scheduled base backups (rendered by infra/services/backup.py).
#
# Built on PostgreSQL's own tools only (pg_receivewal, pg_basebackup, pg_verifybackup, pg_archivecleanup), so it
# runs in the unchanged official `postgres` image. Layout of the archive ($ARCHIVE_DIR):
#   wal/                      segments streamed by pg_receivewal through a replication slot (last one *.partial)
#   wal/SHA256SUMS            sha256 of every completed segment, added as soon as the segment is complete
#   base/<UTC stamp>/         plain-format base backups, each verified by pg_verifybackup, with kaizenity-backup.env
#   base/.partial-<stamp>/    a base backup in progress (removed if it fails; never picked by restore)
#   keys/                     n8n's encryption key, encrypted by `kaizenity backup` (the key to it is NOT here)
# Subcommands: run (container entrypoint), base (one base backup now), sums, status.
set -euo pipefail
umask 077
A=${ARCHIVE_DIR:-/archive}
SLOT=${BACKUP_SLOT:-kaizenity_archive}
INTERVAL=${BACKUP_INTERVAL_SECONDS:-86400}
RETENTION=${BACKUP_RETENTION:-7}
RETRY=${BACKUP_RETRY_SECONDS:-300}
CHECKPOINT=${BACKUP_CHECKPOINT:-spread}
MAX_RATE=${BACKUP_MAX_RATE:-}
WAL_WAIT=${BACKUP_WAL_WAIT_SECONDS:-300}

log() { printf '%s backup-agent: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

wait_for_server() {
    until pg_isready -q -t 5; do sleep 2; done
}

receive_wal() {
    # pg_receivewal resumes from the newest segment in wal/ (or the slot); restarted whenever it stops.
    while true; do
        wait_for_server
        pg_receivewal --slot="$SLOT" --create-slot --if-not-exists 2>/dev/null || true
        log "streaming WAL into $A/wal (slot $SLOT)"
        pg_receivewal -D "$A/wal" --slot="$SLOT" --synchronous --no-loop --status-interval=5 \
            || log "pg_receivewal stopped (exit $?); restarting in 5 s"
        sleep 5
    done
}

sums() {
    # Checksums of completed segments and timeline history files; the .partial segment is still growing.
    cd "$A/wal"
    touch SHA256SUMS
    local f
    for f in $(ls | grep -E '^[0-9A-F]{24}$|^[0-9A-F]{8}\.history$' || true); do
        grep -q "  $f\$" SHA256SUMS || sha256sum "$f" >>SHA256SUMS
    done
}

base() {
    local stamp part final started
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    part="$A/base/.partial-$stamp"
    final="$A/base/$stamp"
    rm -rf "$A"/base/.partial-*   # left by a killed run; we hold the lock, so no other run owns them
    # The trap runs after base() has returned (errexit): a local variable would be unset there ("part: unbound
    # variable", and the half backup stayed), so the path is written into the trap itself.
    trap "rm -rf '$part'" EXIT
    local tries=0
    until pg_isready -q -t 5; do  # e.g. crash recovery after a restart: wait a bounded time
        tries=$((tries + 1)); [ "$tries" -lt 60 ] || { log "server not accepting connections"; return 1; }; sleep 2
    done
    started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    log "base backup $stamp: pg_basebackup (checkpoint=$CHECKPOINT${MAX_RATE:+, max-rate=$MAX_RATE})"
    pg_basebackup -D "$part" -Fp -X stream --checkpoint="$CHECKPOINT" ${MAX_RATE:+--max-rate="$MAX_RATE"} \
        --manifest-checksums=SHA256 --label="kaizenity $stamp" --no-password
    pg_verifybackup -q "$part"
    {
        echo "stamp=$stamp"
        echo "started=$started"
        echo "finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        sed -n 's/^START WAL LOCATION: \([0-9A-F\/]*\) (file \([0-9A-F]*\))$/start_lsn=\1\nstart_wal=\2/p' \
            "$part/backup_label"
        sed -n 's/.*"End-LSN": "\([0-9A-F\/]*\)".*/end_lsn=\1/p' "$part/backup_manifest" | tail -n 1
        echo "verified=pg_verifybackup"
    } >"$part/kaizenity-backup.env"
    wait_wal_archived "$part"
    mv "$part" "$final"
    trap - EXIT
    log "base backup $stamp complete and verified"
    record_pending || true
    prune
}

wait_wal_archived() {
    # A base backup is restorable from the archive only once pg_receivewal holds the segment with its end (the
    # server switches segments at backup end, so that segment completes at once while streaming runs). After a
    # restart of PostgreSQL (crash, SIGKILL) the streamer reconnects some seconds after the server accepts
    # connections: without this wait the backup was listed before its WAL was, and verification found a gap.
    local dir=$1 end tli size hi lo seg name waited=0
    end=$(sed -n 's/^end_lsn=//p' "$dir/kaizenity-backup.env")
    tli=$(sed -n 's/^start_wal=//p' "$dir/kaizenity-backup.env" | cut -c1-8)
    [ -n "$end" ] && [ -n "$tli" ] || { log "base backup without end LSN or timeline"; return 1; }
    size=$(pg_controldata "$dir" 2>/dev/null | sed -n 's/^Bytes per WAL segment: *//p')
    size=${size:-16777216}
    hi=$((16#${end%/*})); lo=$((16#${end#*/}))
    seg=$((((hi << 32) | lo) - 1)); seg=$((seg / size))  # the segment holding the backup's last WAL byte
    name=$(printf '%s%08X%08X' "$tli" $((seg / (0x100000000 / size))) $((seg % (0x100000000 / size))))
    until [ -f "$A/wal/$name" ]; do
        waited=$((waited + 1))
        if [ "$waited" -gt "$WAL_WAIT" ]; then
            log "WAL segment $name (end of the base backup) not streamed into $A/wal after ${WAL_WAIT}s: is pg_receivewal running?"
            return 1
        fi
        sleep 1
    done
}

record_pending() {
    # One row per verified base backup in ops.base_backups (migration 0011): the health probe reads its age over
    # its ordinary database connection. Retried every pass until it works (the schema may not be migrated yet).
    local env stamp started finished lsn
    for env in "$A"/base/*/kaizenity-backup.env; do
        [ -f "$env" ] && [ ! -f "${env%.env}.recorded" ] || continue
        stamp=$(sed -n 's/^stamp=//p' "$env"); started=$(sed -n 's/^started=//p' "$env")
        finished=$(sed -n 's/^finished=//p' "$env"); lsn=$(sed -n 's/^start_lsn=//p' "$env")
        psql -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO ops.base_backups (stamp, started_at, finished_at, start_lsn)
            VALUES ('$stamp', '$started', '$finished', '$lsn') ON CONFLICT (stamp) DO NOTHING" 2>/dev/null \
            && touch "${env%.env}.recorded"
    done
    return 0
}

prune() {
    # Keep the newest $RETENTION base backups and the WAL the oldest of them needs; nothing older.
    local all keep oldest start_wal
    all=$(ls -1 "$A/base" | grep -E '^[0-9]{8}T[0-9]{6}Z$' || true)
    keep=$(printf '%s\n' "$all" | tail -n "$RETENTION")
    for b in $all; do
        printf '%s\n' "$keep" | grep -qx "$b" || { rm -rf "${A:?}/base/$b"; log "retention $RETENTION: removed base $b"; }
    done
    oldest=$(printf '%s\n' "$keep" | head -n 1)
    [ -n "$oldest" ] || return 0
    start_wal=$(sed -n 's/^start_wal=//p' "$A/base/$oldest/kaizenity-backup.env")
    [ -n "$start_wal" ] || return 0
    pg_archivecleanup "$A/wal" "$start_wal"
    if [ -f "$A/wal/SHA256SUMS" ]; then
        (cd "$A/wal" && while read -r sum name; do [ -e "$name" ] && echo "$sum  $name"; done <SHA256SUMS \
            >SHA256SUMS.new && mv SHA256SUMS.new SHA256SUMS)
    fi
}

newest_base_age() {
    local newest
    newest=$(ls -1 "$A/base" | grep -E '^[0-9]{8}T[0-9]{6}Z$' | tail -n 1 || true)
    if [ -z "$newest" ]; then echo 999999999; return; fi
    echo $(($(date +%s) - $(stat -c %Y "$A/base/$newest/kaizenity-backup.env")))
}

schedule() {
    local last_try=0
    while true; do
        sums || log "checksumming segments failed"
        record_pending || true
        if [ "$(newest_base_age)" -ge "$INTERVAL" ] && [ $(($(date +%s) - last_try)) -ge "$RETRY" ]; then
            last_try=$(date +%s)
            wait_for_server
            flock -n -E 75 "$A/.base.lock" "$0" base-locked || log "scheduled base backup failed (exit $?); retry in ${RETRY}s"
        fi
        sleep 10
    done
}

case "${1:-run}" in
    run)
        if [ "$(id -u)" = 0 ]; then
            mkdir -p "$A/wal" "$A/base" "$A/keys"
            chown -R postgres:postgres "$A"
            chmod 700 "$A" "$A/wal" "$A/base" "$A/keys"
            exec gosu postgres "$0" run
        fi
        # PID 1 ignores SIGTERM unless it handles it: without this trap `docker stop` (and a restore, which stops the
        # sidecar) waited the whole grace period before Docker killed it. The process group is the streamer, the
        # schedule and any base backup it runs (a half base backup is removed by the next run).
        trap 'trap - TERM INT; log "stopping"; kill -TERM 0 2>/dev/null; exit 0' TERM INT
        # The slot first: WAL from here on is kept for the archive, so no base backup ends before the archive begins.
        wait_for_server
        pg_receivewal --slot="$SLOT" --create-slot --if-not-exists 2>/dev/null || true
        receive_wal &
        schedule &
        wait  # returns at once on a trapped signal (a foreground loop would delay the trap until its sleep ends)
        ;;
    base) flock -n -E 75 "$A/.base.lock" "$0" base-locked ;;
    base-locked) base ;;
    sums) sums ;;
    record) record_pending ;;
    prune) flock "$A/.base.lock" "$0" prune-locked ;;
    prune-locked) prune ;;
    *) echo "usage: $0 run|base|sums|prune" >&2; exit 2 ;;
esac
