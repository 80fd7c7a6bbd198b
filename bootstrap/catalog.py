"""The migration files: discovered in order, each with the checksum that pins its reviewed content."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
FILE_PATTERN = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
NO_TRANSACTION_MARK = "-- kaizenity:no-transaction"


class MigrationFileError(ValueError):
    """The migrations directory holds a file the runner cannot order or trust."""


@dataclass(frozen=True)
class Migration:
    """One migration file. `checksum` is the SHA-256 of its bytes: any edit after review changes it."""

    version: int
    name: str
    path: Path
    sql: str
    checksum: str

    @property
    def transactional(self) -> bool:
        """False for files that opt out (e.g. `CREATE INDEX CONCURRENTLY` cannot run in a transaction)."""
        return not self.sql.lstrip().startswith(NO_TRANSACTION_MARK)

    @property
    def label(self) -> str:
        return self.path.name


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every `NNNN_name.sql` in `directory`, by version; other `.sql` names and duplicate versions are errors."""
    if not directory.is_dir():
        raise MigrationFileError(f"migrations directory {directory} does not exist. Fix: check the path.")
    migrations: list[Migration] = []
    problems: list[str] = []
    for path in sorted(directory.glob("*.sql")):
        match = FILE_PATTERN.match(path.name)
        if not match:
            problems.append(f"{path.name}: name must look like 0006_add_invoices.sql (4 digits, _, lowercase)")
            continue
        data = path.read_bytes()
        migrations.append(
            Migration(
                version=int(match["version"]),
                name=match["name"],
                path=path,
                sql=data.decode("utf-8"),
                checksum=hashlib.sha256(data).hexdigest(),
            )
        )
    seen: dict[int, str] = {}
    for migration in migrations:
        if migration.version in seen:
            problems.append(f"{migration.label}: version {migration.version} is also used by {seen[migration.version]}")
        seen[migration.version] = migration.label
    if problems:
        raise MigrationFileError(f"invalid migrations in {directory}: " + "; ".join(problems))
    return sorted(migrations, key=lambda m: m.version)
