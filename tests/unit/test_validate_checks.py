"""Each n8n validity check, with the file, node and field named; each valid counterpart accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.validate_support import node, run, texts, workflow
from workflows.validation.schedule import cron_problem

CODE = "n8n-nodes-base.code"


def test_a_node_without_an_id_is_valid_as_n8n_assigns_one(tmp_path: Path) -> None:
    assert texts(run(tmp_path, workflow(node("A")))) == []


def test_null_link_in_connections_is_a_named_problem(tmp_path: Path) -> None:
    found = texts(run(tmp_path, workflow(node("A"), connections={"A": {"main": [[None]]}})))
    assert found == ["w0.json: field 'connections.A.main[0][0]': must be an object {node, type, index}, not null None"]


def test_null_output_is_valid_as_n8n_writes_it_for_unconnected_outputs(tmp_path: Path) -> None:
    links = {"A": {"main": [None, [{"node": "B", "type": "main", "index": 0}]]}}
    assert texts(run(tmp_path, workflow(node("A"), node("B"), connections=links))) == []


def test_credentials_as_a_list_is_a_named_problem(tmp_path: Path) -> None:
    broken = node("A")
    broken["credentials"] = [{"postgres": {"name": "x"}}]
    (problem,) = texts(run(tmp_path, workflow(broken)))
    assert problem.startswith("w0.json: node 'A': field 'credentials': must be an object")


@pytest.mark.parametrize(
    "code", ["return [{json: {a: 1}}]", "const r = await Promise.resolve(1);\nreturn [{json: {r: r?.x ?? 1}}]"]
)
def test_code_node_body_of_an_async_function_is_valid(tmp_path: Path, code: str) -> None:
    assert texts(run(tmp_path, workflow(node("Code", CODE, 2, jsCode=code)))) == []


def test_code_node_syntax_error_names_node_field_and_line(tmp_path: Path) -> None:
    (problem,) = texts(run(tmp_path, workflow(node("Code", CODE, 2, jsCode="const a = 1;\nreturn {"))))
    assert problem.startswith("w0.json: node 'Code': field 'parameters.jsCode': JavaScript does not compile")
    assert "line 3: SyntaxError: Unexpected end of input" in problem


def test_python_code_nodes_are_not_parsed_as_javascript(tmp_path: Path) -> None:
    python = node("Py", CODE, 2, language="python", pythonCode="return [{'a': 1}]", jsCode="}")
    assert texts(run(tmp_path, workflow(python))) == []


def test_expression_naming_a_missing_node_is_named(tmp_path: Path) -> None:
    nodes = [node("A"), node("B", "n8n-nodes-base.set", 3.4, value="={{ $('Nope').item.json.x }} {{ $('A').item }}")]
    (problem,) = texts(run(tmp_path, workflow(*nodes)))
    assert problem.startswith("w0.json: node 'B': field 'parameters.value': refers to node 'Nope'")


def test_node_references_in_code_and_old_syntax(tmp_path: Path) -> None:
    code = node("Code", CODE, 2, jsCode="return $node[\"Gone\"].json && $items('A')")
    old = node("Set", "n8n-nodes-base.set", 3.4, v='={{ $node["Also gone"].json.x }}', w="$('Not an expression')")
    found = texts(run(tmp_path, workflow(node("A"), code, old)))
    assert [p.split(": refers")[0] for p in found] == [
        "w0.json: node 'Code': field 'parameters.jsCode'",
        "w0.json: node 'Set': field 'parameters.v'",
    ]


def schedule(*intervals: dict[str, object]) -> dict[str, object]:
    return node("Every", "n8n-nodes-base.scheduleTrigger", 1.2, rule={"interval": list(intervals)})


def test_cron_that_cannot_fire_and_invalid_cron_are_named(tmp_path: Path) -> None:
    trigger = schedule(
        {"field": "cronExpression", "expression": "0 0 30 2 *"},
        {"field": "cronExpression", "expression": "0 0 ? * *"},
        {"field": "cronExpression", "expression": "0 */5 * * * mon-fri"},
    )
    found = texts(run(tmp_path, workflow(trigger)))
    assert len(found) == 2
    assert found[0].startswith("w0.json: node 'Every': field 'parameters.rule.interval[0].expression': cron")
    assert "can never fire" in found[0]
    assert "interval[1].expression': invalid cron expression '0 0 ? * *'" in found[1]


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        ("0 0 29 2 *", True),  # leap years
        ("0 0 31 4,6 *", False),
        ("0 0 31 2 1", True),  # day-of-month OR day-of-week when both are restricted
        ("@daily", True),
        ("* * * * * * *", False),
        ("0 0 12 * * 7", True),
        ("0 60 * * *", False),
        ("0 0 * * */0", False),
        ("0 0 1 jan,jul *", True),
        ("0 0 1 foo *", False),
        ("5-1 * * * *", False),
    ],
)
def test_cron_rules_follow_the_cron_package(expression: str, ok: bool) -> None:
    assert (cron_problem(expression) is None) is ok


def test_literal_interval_outside_n8ns_range_is_named(tmp_path: Path) -> None:
    trigger = schedule({"field": "minutes", "minutesInterval": 60}, {"field": "hours", "hoursInterval": 3})
    (problem,) = texts(run(tmp_path, workflow(trigger)))
    assert problem == (
        "w0.json: node 'Every': field 'parameters.rule.interval[0].minutesInterval': 60 is outside 1-59 for unit "
        "'minutes'"
    )


def hook(path: str, webhook_id: str, method: str = "POST") -> dict[str, object]:
    found = node("Hook", "n8n-nodes-base.webhook", 2, path=path, httpMethod=method)
    found["webhookId"] = webhook_id
    return found


def test_webhook_paths_compare_as_n8n_normalises_them(tmp_path: Path) -> None:
    found = texts(run(tmp_path, workflow(hook("orders/", "id-1")), workflow(hook("/orders", "id-2"))))
    assert found == [
        "w1.json: node 'Hook': field 'parameters.path': webhook POST /orders is also used by w0.json node 'Hook'; "
        "n8n refuses to activate the second (paths compare without leading or trailing '/')"
    ]


def test_webhook_paths_that_differ_are_valid(tmp_path: Path) -> None:
    other_method = workflow(hook("orders", "id-2", "GET"))
    dynamic = workflow(hook("orders/:id", "id-3"))
    assert texts(run(tmp_path, workflow(hook("orders", "id-1")), other_method, dynamic)) == []


def test_unknown_type_and_version_are_named(tmp_path: Path) -> None:
    found = texts(run(tmp_path, workflow(node("A", "n8n-nodes-base.executeCommand"), node("B", version=7))))
    assert found == [
        "w0.json: node 'A': field 'type': 'n8n-nodes-base.executeCommand' is not a node type of n8n 2.8.4",
        "w0.json: node 'B': field 'typeVersion': 7 is not one of n8n-nodes-base.noOp's versions (1)",
    ]


def test_types_the_pinned_n8n_generates_or_ships_are_known(tmp_path: Path) -> None:
    nodes = [
        node("Agent", "@n8n/n8n-nodes-langchain.agent", 1.7),
        node("DB tool", "n8n-nodes-base.postgresTool", 2.6),
        node("HTML", "n8n-nodes-base.html", 1.2),
        node("WhatsApp", "n8n-nodes-base.whatsAppTrigger", 1),
    ]
    assert texts(run(tmp_path, workflow(*nodes))) == []


def test_legacy_function_node_code_is_compiled_too(tmp_path: Path) -> None:
    broken = node("Fn", "n8n-nodes-base.function", 1, functionCode="items.map(i => {;\nreturn items")
    (problem,) = texts(run(tmp_path, workflow(broken)))
    assert problem.startswith("w0.json: node 'Fn': field 'parameters.functionCode': JavaScript does not compile")


def _error_output_workflow(success_target: str, target_type: str) -> dict[str, object]:
    store = node("Store", "n8n-nodes-base.postgres", 2.6, operation="executeQuery", query="SELECT 1")
    store["onError"] = "continueErrorOutput"
    links = {
        "Store": {
            "main": [
                [{"node": success_target, "type": "main", "index": 0}],
                [{"node": "Refuse", "type": "main", "index": 0}],
            ]
        }
    }
    return workflow(store, node(success_target, target_type), node("Refuse"), connections=links)


def test_error_output_node_whose_success_output_is_not_gated_breaks_the_conventions(tmp_path: Path) -> None:
    """n8n 2.8.4 passes a throwing continueErrorOutput node's input items to its success output
    (workflows/validation/conventions.py): the success output must lead into an If/Switch gate."""
    (problem,) = texts(run(tmp_path, _error_output_workflow("Acknowledge", "n8n-nodes-base.noOp"), conventions=True))
    assert problem.startswith("w0.json: node 'Store': field 'connections': its success output leads to 'Acknowledge'")
    assert "Fix: put an If/Switch between them" in problem
    assert texts(run(tmp_path, _error_output_workflow("Acknowledge", "n8n-nodes-base.noOp"))) == []  # n8n-valid


@pytest.mark.parametrize("gate", ["n8n-nodes-base.if", "n8n-nodes-base.switch"])
def test_error_output_node_gated_by_if_or_switch_is_valid(tmp_path: Path, gate: str) -> None:
    assert texts(run(tmp_path, _error_output_workflow("Stored?", gate), conventions=True)) == []
