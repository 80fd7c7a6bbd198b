"""n8n's login rate limit (HTTP 429) during the owner-password rotation and every other login.

Against tests/fakes/n8n_login.py, a stand-in that answers like n8n 2.8.4's limiter (5 login attempts per window per
e-mail, every attempt counted, `Retry-After` on the 429; its docstring cites the n8n and express-rate-limit source),
with the minute shortened to seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from infra.rotation import RotationError, change_owner_password
from tests.fakes.n8n_login import N8nLoginFake
from workflows.deploy import OWNER_EMAIL
from workflows.n8n_api import LOGIN_RATE_WINDOW_S, N8nApiError, N8nRateLimited, N8nSession, retry_after_s

OLD, NEW = "Old-owner-password-1", "New-owner-password-2"


@pytest.fixture
def n8n() -> Iterator[N8nLoginFake]:
    with N8nLoginFake(OWNER_EMAIL, OLD, limit=5, window_s=2) as fake:
        yield fake


def use_up_the_limit(fake: N8nLoginFake) -> None:
    """Five wrong-password attempts, as a rotation's neighbours (the seeding, the tests' own checks) would make."""
    session = N8nSession(fake.base_url)
    try:
        for _ in range(fake.limit):
            with pytest.raises(N8nApiError) as refused:
                session.login(OWNER_EMAIL, "Wrong-password-0", max_wait_s=0)
            assert refused.value.status == 401
    finally:
        session.close()


def test_the_stand_in_limits_like_n8n_every_attempt_counts_and_429_says_when_to_retry(n8n: N8nLoginFake) -> None:
    use_up_the_limit(n8n)
    body = {"emailOrLdapLoginId": OWNER_EMAIL, "password": OLD}
    answer = httpx.post(f"{n8n.base_url}/rest/login", json=body)
    assert answer.status_code == 429, "the right password is refused too once the window is used up"
    assert 1 <= int(answer.headers["retry-after"]) <= 2
    assert answer.headers["x-ratelimit-remaining"] == "0"
    other = httpx.post(f"{n8n.base_url}/rest/login", json={**body, "emailOrLdapLoginId": "someone@else.invalid"})
    assert other.status_code == 401, "the limit is per e-mail"


def test_rotation_waits_out_the_login_limit_then_changes_the_password(n8n: N8nLoginFake) -> None:
    use_up_the_limit(n8n)
    started = time.monotonic()
    change_owner_password(n8n.base_url, OLD, NEW)
    elapsed = time.monotonic() - started
    assert n8n.limited == 1, "one 429, then it waited as asked"
    assert elapsed >= 1, f"retried after {elapsed:.1f} s, before the Retry-After"
    assert n8n.password == NEW
    assert n8n.password_changes == 1


def test_rotation_logs_in_once_and_changes_the_password_in_that_session(n8n: N8nLoginFake) -> None:
    change_owner_password(n8n.base_url, OLD, NEW)
    assert n8n.logins == 1, "no trial login with the new password first"
    patch = [r for r in n8n.requests if r.method == "PATCH"]
    assert len(patch) == 1
    assert patch[0].headers["cookie"].startswith("n8n-auth=")
    assert n8n.password == NEW


def test_rotation_run_again_after_it_succeeded_changes_nothing(n8n: N8nLoginFake) -> None:
    n8n.password = NEW
    change_owner_password(n8n.base_url, OLD, NEW)
    assert n8n.logins == 2, "old refused (401), new accepted"
    assert n8n.password_changes == 0


def test_a_wait_longer_than_allowed_fails_at_once_naming_the_cause_and_the_fix() -> None:
    with N8nLoginFake(OWNER_EMAIL, OLD, limit=5, window_s=600) as n8n:
        use_up_the_limit(n8n)
        started = time.monotonic()
        with pytest.raises(RotationError) as failed:
            change_owner_password(n8n.base_url, OLD, NEW, max_login_wait_s=30)
        assert time.monotonic() - started < 5, "it did not sleep towards a wait it could not finish"
        message = str(failed.value)
        for words in ("HTTP 429", "5 attempts per 60 s", "retry in 600 s", "wait 600 s and run it again"):
            assert words in message, message
        assert OLD not in message
        assert NEW not in message
        assert n8n.password == OLD, "nothing changed"


def test_login_gives_up_when_the_total_wait_would_pass_the_bound(n8n: N8nLoginFake) -> None:
    use_up_the_limit(n8n)
    session = N8nSession(n8n.base_url)
    try:
        with pytest.raises(N8nRateLimited) as limited:
            session.login(OWNER_EMAIL, OLD, max_wait_s=1.5, sleep=lambda _s: None)  # "slept", still limited
        assert limited.value.retry_after_s == 2
        assert n8n.limited == 1
    finally:
        session.close()


def response(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(429, headers=headers, request=httpx.Request("POST", "http://n8n/rest/login"))


def test_retry_after_is_read_as_seconds_or_an_http_date_then_ratelimit_reset_then_the_window() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s(response({"Retry-After": "17"}), 60) == 17
    later = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert retry_after_s(response({"Retry-After": later}), 60, now=now.timestamp()) == 42
    assert retry_after_s(response({"RateLimit-Reset": "9"}), 60) == 9
    assert retry_after_s(response({"Retry-After": "soon"}), LOGIN_RATE_WINDOW_S) == LOGIN_RATE_WINDOW_S
    assert retry_after_s(response({}), LOGIN_RATE_WINDOW_S) == LOGIN_RATE_WINDOW_S
