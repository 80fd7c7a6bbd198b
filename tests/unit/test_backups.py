"""Backups, the parts that need no containers: ciphers, WAL chain arithmetic, recovery settings, choices."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backups import crypto
from backups.archive import BaseBackup, chain_gaps, segment_index
from backups.catalog import table_digest_sql
from backups.pitr import RestoreRefused, choose_base
from backups.scratch import recovery_settings
from infra.services import backup as backup_service

# `openssl enc -aes-256-cbc -md md5 -pass pass:test-encryption-key-123456 -S 0102030405060708` of
# {"accessToken":"t0k"}, with the Salted__ header: the format n8n's Cipher writes (CryptoJS-compatible).
N8N_VECTOR = "U2FsdGVkX18BAgMEBQYHCHoF48nL7E8xHGCtzBxMHnjGxMsvIvDeVuHWZdrJoLGO"


def test_n8n_credentials_decrypt_as_n8n_encrypted_them() -> None:
    assert crypto.n8n_decrypt("test-encryption-key-123456", N8N_VECTOR) == b'{"accessToken":"t0k"}'
    with pytest.raises(ValueError, match="padding"):
        crypto.n8n_decrypt("another-key-another-key-1", N8N_VECTOR)


def test_n8n_encrypt_round_trips() -> None:
    blob = crypto.n8n_encrypt("test-encryption-key-123456", b'{"password":"x"}')
    assert crypto.n8n_decrypt("test-encryption-key-123456", blob) == b'{"password":"x"}'


def test_backup_key_is_created_private_and_authenticates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cfg" / "backup.key"
    monkeypatch.setenv(crypto.KEY_ENV, str(path))
    with pytest.raises(crypto.BackupKeyError, match="no backup key"):
        crypto.load_key()
    key = crypto.load_key(create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    blob = crypto.encrypt(key, b"n8n-key")
    assert b"n8n-key" not in blob
    assert crypto.decrypt(crypto.load_key(), blob, what="x") == b"n8n-key"
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(crypto.BackupKeyError, match="altered"):
        crypto.decrypt(key, tampered, what="x")
    with pytest.raises(crypto.BackupKeyError, match="another key"):
        crypto.decrypt(bytes(32), blob, what="x")


def test_scram_verifier_matches_rfc_7677_construction() -> None:
    verifier = crypto.scram_verifier("pencil")
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert (method, iterations) == ("SCRAM-SHA-256", "4096")
    assert stored == hashlib.sha256(client_key).digest()
    assert server == hmac.new(salted, b"Server Key", hashlib.sha256).digest()


def test_wal_chain_gaps() -> None:
    assert segment_index("0000000100000001000000FF") == (1, 0x1FF)
    names = ["000000010000000000000002", "000000010000000000000003", "000000010000000000000004.partial"]
    assert chain_gaps("000000010000000000000002", names) == []
    assert chain_gaps("000000010000000000000002", [names[0], names[2]]) == [
        "WAL segment 000000010000000000000003: missing"
    ]
    assert chain_gaps("000000010000000000000009", names) == [
        "no WAL from 000000010000000000000009 onwards in the archive"
    ]
    # across a log-id boundary: ...00FF is followed by ...0100000000
    assert chain_gaps("0000000100000000000000FF", ["0000000100000000000000FF", "000000010000000100000000"]) == []


def test_recovery_needs_the_archive_from_the_segment_holding_the_end_of_the_base_backup() -> None:
    base = BaseBackup("s", datetime.now(UTC), datetime.now(UTC), "0/2000028", "000000010000000000000002", "1/3000100")
    assert base.first_archived_wal == "000000010000000100000003"
    # ending exactly on a segment boundary: the last byte is in the segment before (the next may never complete)
    at_boundary = BaseBackup("s", base.started, base.finished, "0/2000028", base.start_wal, "1/3000000")
    assert at_boundary.first_archived_wal == "000000010000000100000002"
    assert (
        BaseBackup("s", base.started, base.finished, "0/2000028", base.start_wal).first_archived_wal == base.start_wal
    )


def test_recovery_settings_stop_before_the_target_and_use_the_partial_segment() -> None:
    when = datetime(2026, 11, 29, 14, 5, tzinfo=UTC)
    text = recovery_settings(when)
    assert "recovery_target_time = '2026-11-29T14:05:00+00:00'" in text
    assert "recovery_target_inclusive = off" in text
    assert "%f.partial" in text
    assert "recovery_target_action = 'promote'" in text
    assert "recovery_target_time" not in recovery_settings(None)


def _base(stamp: str, finished: datetime) -> BaseBackup:
    return BaseBackup(stamp, finished - timedelta(seconds=5), finished, "0/2000028", "000000010000000000000002")


def test_choose_base_takes_the_newest_finished_before_the_target() -> None:
    t0 = datetime(2026, 11, 29, 10, tzinfo=UTC)
    backups = [_base("a", t0), _base("b", t0 + timedelta(hours=1)), _base("c", t0 + timedelta(hours=2))]
    assert choose_base(backups, t0 + timedelta(minutes=90)).stamp == "b"
    assert choose_base(backups, None).stamp == "c"
    with pytest.raises(RestoreRefused, match="no base backup finished before"):
        choose_base(backups, t0 - timedelta(minutes=1))


def test_table_digest_is_a_streaming_aggregate_not_one_giant_text() -> None:
    sql = table_digest_sql("analytics.events")
    assert "string_agg" not in sql
    assert "ORDER BY" not in sql
    assert "sum(" in sql
    assert "md5(t::text)" in sql


def test_agent_script_is_valid_bash_and_uses_only_postgres_tools() -> None:
    script = Path(backup_service.__file__).with_name("backup_agent.sh")
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for tool in ("pg_receivewal", "pg_basebackup", "pg_verifybackup", "pg_archivecleanup", "--slot"):
        assert tool in text


def test_stream_encryption_round_trips_and_detects_truncation_and_tampering(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(crypto, "CHUNK", 1000)
    key, data = bytes(range(32)), bytes(range(256)) * 20  # 5120 bytes: six chunks
    out = io.BytesIO()
    crypto.encrypt_stream(key, [data[:3000], data[3000:]], out)
    blob = out.getvalue()
    assert b"".join(crypto.decrypt_stream(key, io.BytesIO(blob), what="x")) == data
    with pytest.raises(crypto.BackupKeyError, match="truncated"):
        list(crypto.decrypt_stream(key, io.BytesIO(blob[: len(blob) // 2 + 7]), what="x"))
    tampered = bytearray(blob)
    tampered[100] ^= 1
    with pytest.raises(crypto.BackupKeyError, match="does not decrypt"):
        list(crypto.decrypt_stream(key, io.BytesIO(bytes(tampered)), what="x"))


def test_export_snapshots_the_segment_being_written_and_tar_must_exit_zero(tmp_path: Path) -> None:
    """The export's own script on a fake archive while a writer keeps appending to the `.partial` segment (as
    pg_receivewal does): tar exits 0 and the export holds completed segments, a copy of the partial one under its
    `.partial` name, the checksums and the keys; nothing else (no other base backup, no half one)."""
    import io
    import tarfile
    import threading

    from backups.export import export_script

    wal, keys = tmp_path / "wal", tmp_path / "keys"
    for directory in (wal, keys, tmp_path / "base/20261201T000000Z", tmp_path / "base/20261130T000000Z"):
        directory.mkdir(parents=True)
    (tmp_path / "base/.partial-20261202T000000Z").mkdir()
    (tmp_path / "base/20261201T000000Z/PG_VERSION").write_text("17\n")
    (keys / "n8n-encryption-key.enc").write_bytes(b"k")
    for name in ("000000010000000000000001", "000000010000000000000002", "00000002.history"):
        (wal / name).write_bytes(name.encode())
    (wal / "SHA256SUMS").write_text("x  000000010000000000000001\n")
    partial = wal / "000000010000000000000003.partial"
    partial.write_bytes(b"")
    stop = threading.Event()

    def grow() -> None:
        with partial.open("ab") as handle:
            while not stop.is_set():
                handle.write(b"r" * 4096)
                handle.flush()
                stop.wait(0.001)

    writer = threading.Thread(target=grow)
    writer.start()
    try:
        script = export_script("20261201T000000Z", str(tmp_path))
        done = subprocess.run(["bash", "-c", script], check=False, capture_output=True)
    finally:
        stop.set()
        writer.join()
    assert done.returncode == 0, done.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        files = {m.name: m.size for m in tar.getmembers() if m.isfile()}
    assert set(files) == {
        "base/20261201T000000Z/PG_VERSION",
        "keys/n8n-encryption-key.enc",
        "wal/000000010000000000000001",
        "wal/000000010000000000000002",
        "wal/00000002.history",
        "wal/SHA256SUMS",
        "wal/000000010000000000000003.partial",
    }
