"""Encryption of what the backups keep outside PostgreSQL, and n8n's own credential cipher (to check decryption).

The backup key is a random 256-bit key in a file that is NOT stored with the archive (default
``~/.config/kaizenity/backup.key``, or ``KAIZENITY_BACKUP_KEY_FILE``): whoever holds a copy of the archive alone
cannot read n8n's encryption key from it, and so cannot decrypt the credentials inside the database either.
AES-256-GCM authenticates as well as encrypts, so a tampered file fails loudly instead of decrypting to garbage.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

MAGIC = b"KZB1"
KEY_ENV = "KAIZENITY_BACKUP_KEY_FILE"


class BackupKeyError(RuntimeError):
    """The backup key is missing, unreadable, or not the one a file was encrypted with."""


def key_path() -> Path:
    """Where the backup key lives: `KAIZENITY_BACKUP_KEY_FILE`, else ~/.config/kaizenity/backup.key."""
    configured = os.environ.get(KEY_ENV)
    return Path(configured) if configured else Path.home() / ".config" / "kaizenity" / "backup.key"


def load_key(path: Path | None = None, *, create: bool = False) -> bytes:
    """The 32-byte backup key; with `create`, a new one is generated (0600, directory 0700) when absent."""
    path = path or key_path()
    if not path.exists():
        if not create:
            raise BackupKeyError(
                f"no backup key at {path}. Fix: copy the key file kept with your secrets there, or set {KEY_ENV}."
            )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    try:
        key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except ValueError as exc:
        raise BackupKeyError(f"backup key {path} is not base64 ({exc}). Fix: restore the original key file.") from None
    if len(key) != 32:
        raise BackupKeyError(f"backup key {path} holds {len(key)} bytes, expected 32. Fix: restore the original file.")
    return key


def encrypt(key: bytes, plaintext: bytes) -> bytes:
    """AES-256-GCM: MAGIC | nonce (12) | ciphertext+tag."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, MAGIC)


def decrypt(key: bytes, blob: bytes, *, what: str) -> bytes:
    """Inverse of :func:`encrypt`; raises BackupKeyError naming `what` when the key is wrong or the file altered."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 12 + 16:
        raise BackupKeyError(f"{what} is not a Kaizenity encrypted file. Fix: use the file `kaizenity backup` wrote.")
    nonce, body = blob[len(MAGIC) : len(MAGIC) + 12], blob[len(MAGIC) + 12 :]
    try:
        return AESGCM(key).decrypt(nonce, body, MAGIC)
    except InvalidTag:
        raise BackupKeyError(
            f"{what} does not decrypt with the backup key at {key_path()}: another key, or the file was altered. "
            "Fix: use the backup key of the environment that wrote it."
        ) from None


def n8n_decrypt(encryption_key: str, data: str) -> bytes:
    """Decrypt one n8n credential's `data` column, as n8n's Cipher does (packages/core/src/encryption/cipher.ts):
    base64("Salted__" | salt(8) | AES-256-CBC ciphertext), key and IV from EVP_BytesToKey(MD5, key, salt).

    Raises ValueError when the key is wrong (bad padding) or the text is not n8n ciphertext."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    raw = base64.b64decode(data)
    if raw[:8] != b"Salted__":
        raise ValueError("not n8n ciphertext (no Salted__ header)")
    salt, body = raw[8:16], raw[16:]
    password = encryption_key.encode("latin-1") + salt
    hash1 = hashlib.md5(password).digest()  # noqa: S324 - n8n's key derivation, not our choice
    hash2 = hashlib.md5(hash1 + password).digest()  # noqa: S324
    iv = hashlib.md5(hash2 + password).digest()  # noqa: S324
    decryptor = Cipher(algorithms.AES(hash1 + hash2), modes.CBC(iv)).decryptor()
    padded = decryptor.update(body) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def n8n_encrypt(encryption_key: str, plaintext: bytes) -> str:
    """The inverse of :func:`n8n_decrypt` (random salt), for rewriting a credential in a restored database."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    salt = secrets.token_bytes(8)
    password = encryption_key.encode("latin-1") + salt
    hash1 = hashlib.md5(password).digest()  # noqa: S324 - n8n's key derivation, not our choice
    hash2 = hashlib.md5(hash1 + password).digest()  # noqa: S324
    iv = hashlib.md5(hash2 + password).digest()  # noqa: S324
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(hash1 + hash2), modes.CBC(iv)).encryptor()
    return base64.b64encode(b"Salted__" + salt + encryptor.update(padded) + encryptor.finalize()).decode()


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """A PostgreSQL SCRAM-SHA-256 verifier (RFC 5802/7677, as libpq's PQencryptPasswordConn builds it).

    `ALTER ROLE ... PASSWORD '<verifier>'` sets the password without the plaintext ever reaching a command line
    or the server log."""
    import hmac

    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(value: bytes) -> str:
        return base64.b64encode(value).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


STREAM_MAGIC = b"KZS1"
CHUNK = 4 << 20


def encrypt_stream(key: bytes, chunks: Iterable[bytes], out: BinaryIO) -> None:
    """Encrypt a stream of any length in constant memory: AES-256-GCM per 4 MiB chunk.

    Each chunk's nonce is a random 8-byte stream id plus its 4-byte index, and its associated data says whether
    it is the last one, so reordered, dropped or truncated chunks fail authentication on decryption."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead, stream_id = AESGCM(key), secrets.token_bytes(8)
    out.write(STREAM_MAGIC + stream_id)
    buffer, index = b"", 0

    def emit(data: bytes, last: bool) -> None:
        sealed = aead.encrypt(stream_id + index.to_bytes(4, "big"), data, b"last" if last else b"more")
        out.write(len(sealed).to_bytes(4, "big") + sealed)

    for piece in chunks:
        buffer += piece
        while len(buffer) > CHUNK:
            emit(buffer[:CHUNK], last=False)
            buffer, index = buffer[CHUNK:], index + 1
    emit(buffer, last=True)


def decrypt_stream(key: bytes, source: BinaryIO, *, what: str) -> Iterator[bytes]:
    """Inverse of :func:`encrypt_stream`; raises BackupKeyError on a wrong key, tampering or truncation."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header = source.read(12)
    if header[:4] != STREAM_MAGIC:
        raise BackupKeyError(f"{what} is not a Kaizenity export. Fix: use a file `kaizenity backup export` wrote.")
    aead, stream_id, index = AESGCM(key), header[4:], 0
    while True:
        size = source.read(4)
        sealed = source.read(int.from_bytes(size, "big")) if len(size) == 4 else b""
        if len(size) < 4 or len(sealed) < int.from_bytes(size, "big"):
            raise BackupKeyError(f"{what} is truncated (no final chunk). Fix: copy the export again.")
        nonce = stream_id + index.to_bytes(4, "big")
        for marker in (b"more", b"last"):
            try:
                data = aead.decrypt(nonce, sealed, marker)
            except InvalidTag:
                continue
            yield data
            if marker == b"last":
                return
            break
        else:
            raise BackupKeyError(
                f"{what}: chunk {index} does not decrypt with the backup key at {key_path()} (another key, or the "
                "file was altered). Fix: use the backup key of the environment that exported it."
            )
        index += 1
