"""The idempotent seeder: make n8n run exactly the workflows in git, and nothing else of ours.

After a run, every definition exists in n8n exactly once (matched by name), with the declared content and
active state; a second run changes nothing. Workflows whose name does not start with `Kaizenity: ` (built in
the editor) are never read for changes, updated or removed. A managed workflow whose file was removed from git
is deactivated (or deleted, with `removed="delete"`). Validation comes first: one invalid file, nothing deployed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workflows.definitions import (
    DEFINITIONS_DIR,
    MANAGED_PREFIX,
    CredentialSpec,
    Definition,
    Parameter,
    load_credentials,
    load_parameters,
    substitute,
)
from workflows.n8n_api import PublicApi
from workflows.validate import WorkflowValidationError, check_resolved, load_definitions

WORKFLOW_FIELDS = ("name", "nodes", "connections", "settings")
# The error workflow (workflows/definitions/error-handler.json): created first, then set as `settings.errorWorkflow`
# of every other managed workflow. n8n references it by id, known only once created: the seeder fills it in, so the
# definition files carry no placeholder (and a workflow file added later gets the handler without remembering to).
ERROR_WORKFLOW = f"{MANAGED_PREFIX}error handler"
Progress = Callable[[str], None]


class SeedConfigError(ValueError):
    """Values the workflows need are missing; nothing was deployed."""


@dataclass
class SeedReport:
    """What one run did (or, for a plan, would do)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    activated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    credentials_written: list[str] = field(default_factory=list)
    credential_fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(
            self.created
            or self.updated
            or self.activated
            or self.deactivated
            or self.deleted
            or self.credentials_written
        )


def resolve_values(provided: Mapping[str, str], parameters: Mapping[str, Parameter] | None = None) -> dict[str, str]:
    """Provided values over defaults; raise naming every parameter that has neither."""
    parameters = parameters or load_parameters()
    values = {name: p.default for name, p in parameters.items() if p.default is not None}
    values.update({k: str(v) for k, v in provided.items()})
    missing = sorted(name for name in parameters if name not in values)
    if missing:
        raise SeedConfigError(
            f"no value for workflow parameter(s) {', '.join(missing)}; nothing was deployed. Fix: set them in the "
            "stack's secrets/config (see workflows/parameters.yaml)."
        )
    return values


def seed(
    api: PublicApi,
    provided: Mapping[str, str],
    *,
    known_fingerprints: Mapping[str, str] | None = None,
    removed: Literal["deactivate", "delete"] = "deactivate",
    dry_run: bool = False,
    progress: Progress = lambda _m: None,
    definitions_dir: Path = DEFINITIONS_DIR,
) -> SeedReport:
    """Converge n8n on the definitions in git; `dry_run` only reports what would change."""
    definitions = load_definitions(definitions_dir)  # raises before anything is touched
    values = resolve_values(provided)
    problems = [p for d in definitions for p in check_resolved(d.path.name, desired_body(d, values, {}))]
    if problems:  # still before anything is touched
        raise WorkflowValidationError(problems)
    run = _Run(api, SeedReport(), dry_run, progress)
    credential_ids = run.converge_credentials(values, known_fingerprints or {})
    by_name: dict[str, list[dict[str, Any]]] = {}
    for workflow in api.workflows():
        if str(workflow.get("name", "")).startswith(MANAGED_PREFIX):
            by_name.setdefault(str(workflow["name"]), []).append(workflow)
    error_workflow_id: str | None = None
    for definition in sorted(definitions, key=lambda d: d.data.get("name") != ERROR_WORKFLOW):
        body = desired_body(definition, values, credential_ids)
        if body["name"] != ERROR_WORKFLOW and error_workflow_id:
            body["settings"]["errorWorkflow"] = error_workflow_id
        active = bool(definition.data.get("active", False))
        workflow_id = run.converge_workflow(body, active, by_name.pop(body["name"], []))
        if body["name"] == ERROR_WORKFLOW:
            error_workflow_id = workflow_id
    for leftovers in by_name.values():  # managed names with no file any more
        for workflow in leftovers:
            run.retire(workflow, removed)
    return run.report


def desired_body(
    definition: Definition, values: Mapping[str, str], credential_ids: Mapping[str, str]
) -> dict[str, Any]:
    """The workflow as the public API takes it: placeholders resolved, credential ids filled in by name."""
    chosen = {k: definition.data[k] for k in WORKFLOW_FIELDS if k in definition.data}
    data: dict[str, Any] = substitute(chosen, dict(values))
    for node in data["nodes"]:
        for ref in (node.get("credentials") or {}).values():
            ref["id"] = credential_ids.get(ref["name"], "")
    data.setdefault("settings", {})
    return data


@dataclass
class _Run:
    """One seeding run: the API, what it did so far, and whether it may change anything."""

    api: PublicApi
    report: SeedReport
    dry_run: bool
    progress: Progress

    def converge_workflow(self, body: dict[str, Any], active: bool, matches: list[dict[str, Any]]) -> str | None:
        """Create, update, (de)activate as needed; the workflow's id (None when a dry run would create it)."""
        name = body["name"]
        if not matches:
            self.report.created.append(name)
            self.progress(f"create workflow {name!r}")
            if active:
                self.report.activated.append(name)
            if self.dry_run:
                return None
            workflow_id = str(self.api.create_workflow(body)["id"])
            if active:
                self.api.set_active(workflow_id, True)
            return workflow_id
        keep, *duplicates = sorted(matches, key=lambda w: str(w.get("createdAt", "")))
        for duplicate in duplicates:  # "exactly once": extra copies (a crashed earlier run, a copy-paste) go
            self.retire(duplicate, "delete")
        current = self.api.workflow(str(keep["id"]))
        if same_content(body, current):
            self.report.unchanged.append(name)
        else:
            self.report.updated.append(name)
            self.progress(f"update workflow {name!r}")
            if not self.dry_run:
                self.api.update_workflow(str(keep["id"]), body)
        if bool(current.get("active")) != active:
            (self.report.activated if active else self.report.deactivated).append(name)
            self.progress(f"{'activate' if active else 'deactivate'} workflow {name!r}")
            if not self.dry_run:
                self.api.set_active(str(keep["id"]), active)
        return str(keep["id"])

    def retire(self, workflow: dict[str, Any], how: str) -> None:
        name = str(workflow["name"])
        if how == "delete":
            self.report.deleted.append(name)
            self.progress(f"delete workflow {name!r} ({workflow['id']})")
            if not self.dry_run:
                self.api.delete_workflow(str(workflow["id"]))
        elif workflow.get("active"):
            self.report.deactivated.append(name)
            self.progress(f"deactivate workflow {name!r}: its file is no longer in git")
            if not self.dry_run:
                self.api.set_active(str(workflow["id"]), False)

    def converge_credentials(self, values: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str]:
        """Create or update the declared credentials; return their ids by name.

        n8n never returns credential secrets, so "unchanged" is judged by a fingerprint of what we wrote last
        time (kept by the caller: Pulumi state, the local state file); an unknown fingerprint = write again.
        """
        existing = {str(c["name"]): str(c["id"]) for c in self.api.credentials()}
        ids: dict[str, str] = {}
        for spec in load_credentials().values():
            data = credential_data(spec, values)
            fingerprint = hashlib.sha256(json.dumps([spec.type, data], sort_keys=True).encode()).hexdigest()
            self.report.credential_fingerprints[spec.name] = fingerprint
            ids[spec.name] = existing.get(spec.name, "")
            if spec.name in existing and known.get(spec.name) == fingerprint:
                continue
            self.report.credentials_written.append(spec.name)
            self.progress(f"{'update' if spec.name in existing else 'create'} credential {spec.name!r}")
            if self.dry_run:
                continue
            if spec.name in existing:
                self.api.update_credential(existing[spec.name], spec.name, spec.type, data)
            else:
                ids[spec.name] = self.api.create_credential(spec.name, spec.type, data)
        return ids


def same_content(desired: dict[str, Any], current: dict[str, Any]) -> bool:
    """True when n8n holds what we declare: every field we set, as we set it (n8n may add its own)."""
    if desired["name"] != current.get("name") or desired["connections"] != current.get("connections"):
        return False
    settings = current.get("settings") or {}
    if any(settings.get(k) != v for k, v in desired.get("settings", {}).items()):
        return False
    remote_nodes = {n.get("name"): n for n in current.get("nodes") or []}
    if set(remote_nodes) != {n["name"] for n in desired["nodes"]}:
        return False
    return all(
        all(remote_nodes[node["name"]].get(key) == value for key, value in node.items()) for node in desired["nodes"]
    )


def credential_data(spec: CredentialSpec, values: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = dict(spec.static)
    for field_name, parameter in spec.fields.items():
        value = values[parameter]
        data[field_name] = int(value) if value.isdigit() and field_name == "port" else value
    return data
