"""The cron check agrees with the `cron` package n8n itself uses, run inside the pinned n8n image.

`workflows/validation/schedule.py` reimplements the package's parser and its "never fires" condition; this test
feeds the same expressions to `cron` 4.4.0 from the image (`new CronTime(expr).sendAt()`, what `CronJob` does on
start) and requires the same verdict for each.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from workflows.validation.generate_node_types import pinned_image
from workflows.validation.schedule import cron_problem

pytestmark = pytest.mark.integration

EXPRESSIONS = [
    "* * * * *", "0 0 * * *", "*/5 * * * * *", "0 9 * * mon-fri", "0 0 1 jan,jul *", "@daily", "@weekly",
    "0 0 29 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 1", "0 0 31 * *", "0 0 12 * * 7", "0 0 * * 0-7",
    "0 60 * * *", "0 0 24 * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8", "5-1 * * * *", "*/0 * * * *",
    "0 0 ? * *", "0 0 L * *", "0 0 1W * *", "0 0 * * 1#2", "* * * *", "* * * * * * *", "0 0 1 foo *", "1-5/2 * * * *",
    "0 0 * * sun", "0 0 * * SAT", "a * * * *", "0 5/15 * * *", "0 1,2,3-5 * * *", "*5 * * * *", "0 0 1 */2 *",
]  # fmt: skip

SCRIPT = r"""
const { CronTime } = require('cron');
const out = {};
for (const e of JSON.parse(process.argv[1])) {
  try { new CronTime(e).sendAt(); out[e] = true; } catch (err) { out[e] = false; }
}
console.log(JSON.stringify(out));
"""


def test_every_verdict_matches_n8ns_cron_package() -> None:
    image = pinned_image()[1]
    result = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "node", "-w", "/usr/local/lib/n8n/node_modules", image,
         "-e", SCRIPT, json.dumps(EXPRESSIONS)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    theirs = json.loads(result.stdout)
    ours = {e: cron_problem(e) is None for e in EXPRESSIONS}
    assert set(theirs.values()) == {True, False}
    assert ours == theirs
