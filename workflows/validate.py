"""`kaizenity workflows validate`: every problem in the workflow files, each naming file, node and field.

Deployment runs this first and deploys nothing when anything is wrong: a half-deployed set of workflows that
reference each other or shared webhooks is worse than the previous complete set. The checks live in
`workflows/validation/` (one concern per module); this module collects the files and runs them in order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflows.definitions import DEFINITIONS_DIR, Definition, load_credentials, load_parameters
from workflows.validation.conventions import check_conventions, check_unique_names
from workflows.validation.expressions import check_references
from workflows.validation.javascript import CodeSource, check_javascript, code_sources
from workflows.validation.node_types import KnownNodeTypes, check_node_types, load_known_node_types
from workflows.validation.problems import Notice, Problem, Section, as_list
from workflows.validation.schedule import check_schedules
from workflows.validation.shape import check_workflow
from workflows.validation.sql_check import SqlSource, check_sql, sql_sources
from workflows.validation.webhooks import Hook, check_webhooks, hooks_of

DATABASE_URL_ENV = "KAIZENITY_VALIDATE_DATABASE_URL"
INTERNAL_ERROR = "the validator failed on this file"


class WorkflowValidationError(ValueError):
    """One or more workflow files are invalid; `problems` lists each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the workflow files; nothing was deployed:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass
class Report:
    """Everything one validation run found."""

    definitions: list[Definition] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def section(self, section: Section) -> list[Problem]:
        return [p for p in self.problems if p.section is section]


@dataclass
class _Pending:
    """Checks that run once for all files: one `node` process, one database connection, shared webhooks."""

    code: list[CodeSource] = field(default_factory=list)
    sql: list[SqlSource] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    names: list[tuple[str, Any]] = field(default_factory=list)


def collect_files(paths: Iterable[Path]) -> tuple[list[tuple[str, Path]], list[Problem]]:
    """(label, path) of every workflow file: files as given, directories' `*.json`; missing paths are problems."""
    files: dict[Path, str] = {}
    problems = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                problems.append(Problem(str(path), "no workflow files (*.json) in this directory"))
            files.update({f.resolve(): f.name for f in found if f.resolve() not in files})
        elif path.is_file():
            files.setdefault(path.resolve(), str(path))
        else:
            problems.append(Problem(str(path), "no such file or directory. Fix: give a workflow file or directory"))
    return [(label, path) for path, label in files.items()], problems


def validate_paths(paths: Iterable[Path], *, database_url: str | None = None, conventions: bool = True) -> Report:
    """Run every check over the workflow files under `paths`; never raises for anything in the files."""
    files, problems = collect_files(paths)
    report = Report(problems=problems)
    known = load_known_node_types()
    credentials, parameters = load_credentials(), load_parameters()
    pending = _Pending()
    for label, path in files:
        data = _read(label, path, report)
        if data is None:
            continue
        try:
            report.problems += _check_file(label, data, known, pending)
            if conventions:
                report.problems += check_conventions(label, data, credentials, parameters)
        except RecursionError:
            report.problems.append(Problem(label, "nested too deeply to be a workflow"))
        except Exception as exc:  # a validator bug must still name the file, never end in a traceback
            report.problems.append(Problem(label, f"{INTERNAL_ERROR} ({exc!r}); please report it with this file"))
        report.definitions.append(Definition(path, data))
    _run_pending(pending, report, database_url, conventions)
    return report


def _read(label: str, path: Path, report: Report) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        report.problems.append(Problem(label, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"))
        return None
    except (ValueError, RecursionError, OSError) as exc:
        report.problems.append(Problem(label, f"cannot be read as JSON text: {exc}"))
        return None
    if not isinstance(data, dict):
        report.problems.append(
            Problem(label, f"top level must be a JSON object (a workflow), not {type(data).__name__}")
        )
        return None
    return data


def _check_file(label: str, data: dict[str, Any], known: KnownNodeTypes, pending: _Pending) -> list[Problem]:
    problems = check_workflow(label, data)
    nodes = as_list(data.get("nodes"))
    problems += check_node_types(label, nodes, known)
    problems += check_references(label, nodes)
    problems += check_schedules(label, nodes)
    pending.code += code_sources(label, nodes)
    pending.sql += sql_sources(label, nodes)
    pending.hooks += hooks_of(label, nodes)
    pending.names.append((label, data.get("name")))
    return problems


def _run_pending(pending: _Pending, report: Report, database_url: str | None, conventions: bool) -> None:
    report.problems += check_webhooks(pending.hooks)
    if conventions:
        report.problems += check_unique_names(pending.names)
    for found, notices in (check_javascript(pending.code), check_sql(pending.sql, database_url)):
        report.problems += found
        report.notices += notices


def database_url_from_env() -> str | None:
    return os.environ.get(DATABASE_URL_ENV) or None


def load_definitions(directory: Path = DEFINITIONS_DIR, *, database_url: str | None = None) -> list[Definition]:
    """Validate every `*.json` in `directory` (both sections); raise listing every problem, or return them all."""
    report = validate_paths([directory], database_url=database_url)
    if report.problems:
        raise WorkflowValidationError([str(p) for p in report.problems])
    return report.definitions


def check_resolved(file: str, body: dict[str, Any]) -> list[str]:
    """Problems only visible once placeholders are filled in: schedule intervals and cron expressions n8n would
    reject at run time (it activates such a workflow without complaint, then never fires it)."""
    nodes = as_list(body.get("nodes"))
    return [str(p) for p in check_schedules(file, nodes, resolved=True)]
