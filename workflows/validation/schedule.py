"""Schedule Trigger rules n8n would refuse or never fire, checked before deployment.

Intervals: n8n 2.8.4 `n8n-nodes-base/dist/nodes/Schedule/GenericFunctions.js` (`validateInterval`): seconds and
minutes 1-59, hours 1-23, days 1-31, months at least 1; `triggerAtDayOfMonth` 1-31 and `triggerAtMinute` 0-59
(the parameters' `minValue`/`maxValue`). Values that are placeholders or expressions are checked once resolved
(`check_resolved`, run by the seeder).

Cron expressions: n8n hands them to the `cron` package (4.4.0 in n8n 2.8.4, `new CronJob(expression)` in
n8n-core's `ScheduledTaskManager.registerCron`), whose parser this module follows rule for rule
(`cron/dist/time.js` `_parse`/`_parseField`, `constants.js`): 5 or 6 fields (seconds optional), presets such as
`@daily`, three-letter month and weekday names, `*`, `a`, `a-b`, `a/s`, `a-b/s` and lists; no `?`, `L`, `W` or
`#`. A day matches the day-of-month or the day-of-week set when both are restricted, the restricted one otherwise
(`_getNextDateFrom`); an expression with no matching date in 8 years makes `CronJob` throw, so activation fails
with "Invalid cron expression". Reimplemented (not croniter) because croniter accepts what `cron` refuses (`?`,
`L`, seconds as the last field) and so would pass expressions that n8n rejects.
"""

from __future__ import annotations

import re
from typing import Any

from workflows.validation.problems import Problem, node_label

SCHEDULE_TYPE = "n8n-nodes-base.scheduleTrigger"
# field -> (parameter, lowest, highest or None)
INTERVAL_RANGES: dict[str, tuple[str, int, int | None]] = {
    "seconds": ("secondsInterval", 1, 59),
    "minutes": ("minutesInterval", 1, 59),
    "hours": ("hoursInterval", 1, 23),
    "days": ("daysInterval", 1, 31),
    "months": ("monthsInterval", 1, None),
}
OTHER_RANGES = {"triggerAtDayOfMonth": (1, 31), "triggerAtMinute": (0, 59), "triggerAtHour": (0, 23)}

UNITS = ("second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek")
CONSTRAINTS = {"second": (0, 59), "minute": (0, 59), "hour": (0, 23), "dayOfMonth": (1, 31), "month": (1, 12),
               "dayOfWeek": (0, 7)}  # fmt: skip
ALIASES = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
           "nov": 11, "dec": 12, "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}  # fmt: skip
PRESETS = {"@yearly": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *", "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *",
           "@hourly": "0 0 * * * *", "@minutely": "0 * * * * *", "@secondly": "* * * * * *",
           "@weekdays": "0 0 0 * * 1-5", "@weekends": "0 0 0 * * 0,6"}  # fmt: skip
RANGE = re.compile(r"^(\d+)(?:-(\d+))?(?:/(\d+))?$")
DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


class CronError(ValueError):
    """The `cron` package would refuse this expression (message as close to its own as is useful)."""


def parse_cron(source: str) -> dict[str, set[int]]:
    """The sets of seconds, minutes, ... an expression allows, parsed as the `cron` package parses it."""
    source = source.lower()
    source = PRESETS.get(source, source)

    def alias(match: re.Match[str]) -> str:
        if match[0] not in ALIASES:
            raise CronError(f"unknown alias {match[0]!r}")
        return str(ALIASES[match[0]])

    fields = re.sub(r"[a-z]{1,3}", alias, source).split()
    if not 5 <= len(fields) <= 6:
        raise CronError(f"{len(fields)} fields; n8n's cron takes 5 or 6 (seconds first)")
    if len(fields) == 5:
        fields = ["0", *fields]
    return {unit: _parse_field(value, unit) for unit, value in zip(UNITS, fields, strict=True)}


def _parse_field(value: str, unit: str) -> set[int]:
    low, high = CONSTRAINTS[unit]
    if any("*" in part and not part.startswith("*") for part in value.split(",")):
        raise CronError(f"{unit} field {value!r} has an invalid wildcard")
    allowed: set[int] = set()
    for part in value.replace("*", f"{low}-{high}").split(","):
        match = RANGE.match(part)
        if match is None:
            raise CronError(f"{unit} field {value!r} cannot be parsed")
        lower, upper, step = int(match[1]), match[2], int(match[3] or 1)
        top = int(upper) if upper is not None else (high if match[3] else lower)
        if step == 0:
            raise CronError(f"{unit} field {value!r} has a step of zero")
        if lower > top and upper is not None:
            raise CronError(f"{unit} field {value!r} has an invalid range")
        if lower < low or top > high or lower > high:
            raise CronError(f"{unit} value in {value!r} is out of range {low}-{high}")
        allowed.update(range(lower, top + 1, step))
    if unit == "dayOfWeek" and 7 in allowed:
        allowed = (allowed - {7}) | {0}
    return allowed


def can_fire(sets: dict[str, set[int]]) -> bool:
    """Whether some date matches: day-of-month OR day-of-week when both are restricted (the `cron` package)."""
    dom_restricted, dow_restricted = len(sets["dayOfMonth"]) != 31, len(sets["dayOfWeek"]) != 7
    if dow_restricted:
        return True  # every month has every weekday, and the day-of-week set is never empty
    if not dom_restricted:
        return True
    return any(day <= DAYS_IN_MONTH[month] for month in sets["month"] for day in sets["dayOfMonth"])


def cron_problem(expression: str) -> str | None:
    """Why n8n would refuse `expression` on activation, or None."""
    try:
        sets = parse_cron(expression)
    except CronError as exc:
        return f"invalid cron expression {expression!r}: {exc} (n8n refuses to activate: 'Invalid cron expression')"
    if not can_fire(sets):
        return (
            f"cron expression {expression!r} can never fire (no such day in the chosen months); n8n refuses to "
            "activate it ('Invalid cron expression')"
        )
    return None


def _literal_int(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None  # a placeholder or an expression: checked once resolved


def check_schedules(file: str, nodes: list[Any], *, resolved: bool = False) -> list[Problem]:
    """Literal intervals outside n8n's ranges and cron expressions n8n refuses or that never fire."""
    problems: list[Problem] = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or node.get("type") != SCHEDULE_TYPE:
            continue
        rule = (node.get("parameters") or {}).get("rule") if isinstance(node.get("parameters"), dict) else None
        intervals = rule.get("interval") if isinstance(rule, dict) else None
        if not isinstance(intervals, list):
            continue
        for position, interval in enumerate(intervals):
            if isinstance(interval, dict):
                where = f"parameters.rule.interval[{position}]"
                problems += _check_interval(file, node_label(node, index), where, interval, resolved)
    return problems


def _check_interval(file: str, label: str, where: str, interval: dict[str, Any], resolved: bool) -> list[Problem]:
    hint = " (check the parameter that fills it)" if resolved else ""
    field = interval.get("field", "days")
    if field == "cronExpression":
        expression = interval.get("expression")
        if isinstance(expression, str) and not expression.startswith("=") and "%%" not in expression:
            message = cron_problem(expression.strip())
            return [Problem(file, message + hint, label, f"{where}.expression")] if message else []
        return []
    checks: list[tuple[str, int, int | None]] = []
    if isinstance(field, str) and field in INTERVAL_RANGES:
        checks.append(INTERVAL_RANGES[field])
    checks += [(key, low, high) for key, (low, high) in OTHER_RANGES.items() if key in interval]
    problems = []
    for key, low, high in checks:
        value = _literal_int(interval.get(key, low))
        if value is None:
            continue
        if not float(value).is_integer() or value < low or (high is not None and value > high):
            allowed = f"{low}-{high}" if high is not None else f"at least {low}"
            problems.append(
                Problem(
                    file,
                    f"{interval.get(key)!r} is outside {allowed} for unit {field!r}{hint}",
                    label,
                    f"{where}.{key}",
                )
            )
    return problems
