"""JavaScript of Code nodes, compiled the way n8n wraps it, with the `node` on this machine.

n8n 2.x runs Code node JavaScript in its task runner, which compiles
`module.exports = async function VmCodeWrapper() {<code>\\n}()` in a `vm` context
(`packages/@n8n/task-runner/src/js-task-runner/js-task-runner.ts`, `createVmExecutableCode`). So the code is the
body of an async function: top-level `return` and `await` are valid, `import` is not. Compiling the same wrapper
with `vm.Script` in Node.js (without running it) gives exactly V8's verdict, including syntax no Python parser
knows (optional chaining, class fields, regex flags). Node.js 20+ parses all syntax n8n's Node 22 does for a
function body. Without `node` on PATH the check is skipped with a notice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from workflows.validation.problems import Notice, Problem, node_label

# node type -> the parameter holding its JavaScript; the legacy Function nodes wrap it the same way
# (`module.exports = async function() {<code>\n}()` in `Function.node.js` / `FunctionItem.node.js`).
CODE_FIELDS = {"n8n-nodes-base.code": "jsCode", "@n8n/n8n-nodes-langchain.code": "jsCode",
               "@n8n/n8n-nodes-langchain.toolCode": "jsCode", "n8n-nodes-base.function": "functionCode",
               "n8n-nodes-base.functionItem": "functionCode"}  # fmt: skip
CODE_TYPES = set(CODE_FIELDS)
# Reads [code, ...] on stdin, prints [error-or-null, ...]: each error "line L: message" relative to the user code.
_COMPILE = r"""
const vm = require('vm');
const codes = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = codes.map((code) => {
  try {
    new vm.Script('module.exports = async function VmCodeWrapper() {' + code + '\n}()', { filename: 'code.js' });
    return null;
  } catch (e) {
    const m = /code\.js:(\d+)/.exec(String(e.stack));
    return (m ? 'line ' + m[1] + ': ' : '') + e.name + ': ' + e.message;
  }
});
process.stdout.write(JSON.stringify(out));
"""


@dataclass(frozen=True)
class CodeSource:
    file: str
    node: str
    field: str
    code: str


def code_sources(file: str, nodes: list[Any]) -> list[CodeSource]:
    """The JavaScript of every Code node (Python Code nodes are not JavaScript; n8n's default code is valid)."""
    sources = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or str(node.get("type")) not in CODE_TYPES:
            continue
        params = node.get("parameters")
        if not isinstance(params, dict) or params.get("language", "javaScript") != "javaScript":
            continue
        key = CODE_FIELDS[str(node.get("type"))]
        code = params.get(key)
        if isinstance(code, str):
            sources.append(CodeSource(file, node_label(node, index), f"parameters.{key}", code))
    return sources


def check_javascript(sources: list[CodeSource]) -> tuple[list[Problem], list[Notice]]:
    """One `node` process for all sources; its verdict per source."""
    if not sources:
        return [], []
    node_binary = shutil.which("node")
    if node_binary is None:
        return [], [Notice(f"Code node JavaScript not checked ({len(sources)} node(s)): no `node` on PATH")]
    result = subprocess.run(
        [node_binary, "-e", _COMPILE],
        input=json.dumps([s.code for s in sources]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        return [], [Notice(f"Code node JavaScript not checked: node failed: {result.stderr.strip()[:300]}")]
    verdicts = json.loads(result.stdout)
    return [
        Problem(s.file, f"JavaScript does not compile as n8n runs it: {v}", s.node, s.field)
        for s, v in zip(sources, verdicts, strict=True)
        if v
    ], []
