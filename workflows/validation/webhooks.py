"""Webhook paths compared the way n8n stores them: two workflows cannot listen on the same method and path.

n8n 2.8.4 `n8n/dist/webhooks/webhook.service.js` (`getNodeWebhooks`): disabled nodes register nothing; the path
loses one leading and one trailing `/`; `NodeHelpers.getNodeWebhookPath` then gives `path || webhookId` for a node
with a `webhookId` (full path), and `<workflowId>/<node name>/<path>` for one without (never shared across
workflows). A dynamic path (`:id` segments) is keyed with the node's `webhookId` in front. The webhook table's
primary key is (webhookPath, method): the second workflow to claim one fails to activate (`WebhookPathTakenError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflows.validation.problems import Problem, as_dict, node_label

PATH_TYPES = {"n8n-nodes-base.webhook", "n8n-nodes-base.formTrigger", "@n8n/n8n-nodes-langchain.mcpTrigger"}


@dataclass(frozen=True)
class Hook:
    file: str
    node: str
    method: str
    path: str


def normalise(path: str) -> str:
    """One leading and one trailing `/` removed, as n8n does before storing a webhook."""
    path = path.removeprefix("/")
    return path.removesuffix("/")


def _methods(node: dict[str, Any], params: dict[str, Any]) -> list[str]:
    if node.get("type") != "n8n-nodes-base.webhook":
        return ["GET", "POST"]
    if params.get("multipleMethods") is True:
        methods = params.get("httpMethod", ["GET", "POST"])
        return [str(m) for m in methods] if isinstance(methods, list) else [str(methods)]
    return [m.strip() for m in str(params.get("httpMethod", "GET")).split(",") if m.strip()]


def hooks_of(file: str, nodes: list[Any]) -> list[Hook]:
    """The (method, path) pairs this workflow's nodes claim; expression paths are unknown until run time."""
    hooks = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or str(node.get("type")) not in PATH_TYPES or node.get("disabled") is True:
            continue
        params = as_dict(node.get("parameters"))
        raw, webhook_id = params.get("path", ""), node.get("webhookId")
        if not isinstance(raw, str) or raw.startswith("=") or not isinstance(webhook_id, str):
            continue
        path = normalise(raw) or webhook_id
        if path.startswith(":") or "/:" in path:
            path = f"{webhook_id}/{path}"
        hooks += [Hook(file, node_label(node, index), method, path) for method in _methods(node, params)]
    return hooks


def check_webhooks(hooks: list[Hook]) -> list[Problem]:
    """Every (method, normalised path) claimed twice, across all files given together."""
    seen: dict[tuple[str, str], Hook] = {}
    problems = []
    for hook in hooks:
        key = (hook.method.upper(), hook.path)
        first = seen.setdefault(key, hook)
        if first is not hook:
            problems.append(
                Problem(
                    hook.file,
                    f"webhook {key[0]} /{hook.path} is also used by {first.file} node {first.node!r}; n8n refuses "
                    "to activate the second (paths compare without leading or trailing '/')",
                    hook.node,
                    "parameters.path",
                )
            )
    return problems
