"""The Telegram channel on the real stack (n8n, PostgreSQL, Caddy) against a Bot API fake that refuses what the
real API refuses (tests/fakes/telegram_bot_api.py).

Inbound: an update is answered 2xx only once it is stored; a failure before that answers non-2xx, and the
redelivery (what Telegram does with any non-2xx or timed-out delivery) stores it exactly once.
Outbound: any text arrives unchanged, long bodies are split, 429 waits retry_after, permanent errors dead-letter
at once with the reason, and buttons round-trip to a recorded choice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import httpx
import psycopg
import pytest

from infra.local_endpoints import LocalEndpoints
from infra.model import internal_route_token
from infra.services.gateway import STORED_HEADER
from tests.fakes.telegram_bot_api import FakeTelegram
from tests.integration.test_workflows import reseed
from tests.integration.waiting import wait_until

pytestmark = pytest.mark.integration

TOKEN = "123456:TEST-token"


def query(stack: LocalEndpoints, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    assert stack.database_url
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def superuser(stack: LocalEndpoints, sql: str) -> None:
    """Run DDL as the database owner (the app role may not alter tables)."""
    container = docker.from_env().containers.get(stack.containers["postgres"])
    code, output = container.exec_run(["psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "kaizenity", "-c", sql])
    assert code == 0, output.decode()


@pytest.fixture(scope="module")
def gateway(kaizenity_stack: LocalEndpoints) -> Iterator[httpx.Client]:
    assert kaizenity_stack.ca_file
    with httpx.Client(verify=ssl.create_default_context(cafile=kaizenity_stack.ca_file), timeout=15) as client:
        yield client


class Telegram:
    """Plays Telegram's side of the webhook: delivers updates, redelivers what was not answered 2xx."""

    def __init__(self, stack: LocalEndpoints, client: httpx.Client) -> None:
        self.url = f"{stack.webhook_base_url}telegram/{stack.secrets['telegramWebhookPathToken']}"
        self.headers = {"X-Telegram-Bot-Api-Secret-Token": stack.secrets["telegramWebhookSecret"]}
        self.client = client

    def deliver(self, update: dict[str, Any], timeout: float = 15) -> int | None:
        """The HTTP status, or None when the webhook did not answer (in time): Telegram retries both."""
        try:
            return self.client.post(self.url, json=update, headers=self.headers, timeout=timeout).status_code
        except httpx.TransportError:  # a timeout, or a connection dropped while n8n or a worker dies
            return None

    def deliver_until_acknowledged(self, updates: list[dict[str, Any]], timeout_s: float = 90) -> None:
        pending = list(updates)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            statuses = [self.deliver(u) for u in pending]
            pending = [u for u, s in zip(pending, statuses, strict=True) if s is None or not 200 <= s < 300]
            if pending:
                time.sleep(1)
        assert not pending, f"{len(pending)} updates never acknowledged"


@pytest.fixture(scope="module")
def telegram(kaizenity_stack: LocalEndpoints, gateway: httpx.Client) -> Telegram:
    return Telegram(kaizenity_stack, gateway)


def message(update_id: int, chat: int = 4242, text: str = "hello") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {"message_id": update_id, "date": 0, "chat": {"id": chat, "type": "private"}, "text": text},
    }


def stored(stack: LocalEndpoints, first: int, last: int) -> dict[str, int]:
    rows = query(
        stack,
        "SELECT idempotency_key, count(*) FROM ops.messages WHERE channel = 'telegram' AND direction = 'inbound' "
        "AND idempotency_key = ANY(%s) GROUP BY 1",
        [str(i) for i in range(first, last + 1)],
    )
    return dict(rows)


def test_a_failing_insert_is_answered_non_2xx_and_the_redelivery_is_stored_once(
    kaizenity_stack: LocalEndpoints, telegram: Telegram
) -> None:
    """Fails on the old `onReceived` workflow: it answered 200 before the insert, which then failed for good."""
    superuser(kaizenity_stack, "ALTER TABLE ops.messages ADD CONSTRAINT kzt_refuse CHECK (false) NOT VALID")
    try:
        statuses = [telegram.deliver(message(880_000 + i)) for i in range(3)]
    finally:
        superuser(kaizenity_stack, "ALTER TABLE ops.messages DROP CONSTRAINT kzt_refuse")
    assert all(s is None or s >= 400 for s in statuses), statuses
    assert stored(kaizenity_stack, 880_000, 880_002) == {}
    telegram.deliver_until_acknowledged([message(880_000 + i) for i in range(3)])
    telegram.deliver_until_acknowledged([message(880_000)])  # a redelivery of a stored update is still 2xx
    assert stored(kaizenity_stack, 880_000, 880_002) == {str(880_000 + i): 1 for i in range(3)}


def test_a_store_step_that_throws_is_refused_by_the_workflow_itself(
    kaizenity_stack: LocalEndpoints, telegram: Telegram
) -> None:
    """n8n 2.8.4 sends a throwing node's *input* items to its success output when it is set to continue on the
    error output (workflows/validation/conventions.py). Seen for real: a worker shutting down under a running
    execution could no longer read the app database credential, and the update was acknowledged, never stored.
    Here that credential's stored data is made unreadable (n8n reads and decrypts it for every execution), so
    `Store update once` throws before its query. The workflow itself answers 500 (asked directly, without the
    gateway's proof check), the gateway too, nothing is stored, and the redelivery after the repair is stored.
    Fails on the workflow without the `Stored?` gate: it answered 200."""
    stack = kaizenity_stack
    credential = "SELECT data FROM credentials_entity WHERE name = 'Kaizenity app database'"
    ((original,),) = n8n_query(stack, credential)
    direct_url = f"{stack.n8n_url}/webhook/telegram/{internal_route_token(stack.secrets['telegramWebhookPathToken'])}"
    n8n_query(stack, "UPDATE credentials_entity SET data = 'unreadable' WHERE name = 'Kaizenity app database'")
    try:
        direct = httpx.post(direct_url, json=message(887_000), headers=telegram.headers, timeout=15)
        through_gateway = telegram.deliver(message(887_001))
    finally:
        n8n_query(stack, "UPDATE credentials_entity SET data = %s WHERE name = 'Kaizenity app database'", original)
    assert direct.status_code == 500, (direct.status_code, direct.headers, direct.text[:200])
    assert STORED_HEADER.lower() not in direct.headers
    assert through_gateway is None or through_gateway >= 400, through_gateway
    assert stored(stack, 887_000, 887_001) == {}
    telegram.deliver_until_acknowledged([message(887_000), message(887_001)])
    assert stored(stack, 887_000, 887_001) == {"887000": 1, "887001": 1}


def n8n_query(stack: LocalEndpoints, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """A statement on n8n's own database, as n8n's role."""
    assert stack.n8n_database_url
    with psycopg.connect(stack.n8n_database_url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def pause_postgres_while_delivering(stack: LocalEndpoints, telegram: Telegram, first_id: int) -> None:
    """20 updates sent while PostgreSQL is paused: none answered 2xx; after it resumes, redelivery stores each once."""
    postgres = docker.from_env().containers.get(stack.containers["postgres"])
    updates = [message(first_id + i) for i in range(20)]
    postgres.pause()
    try:
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda u: telegram.deliver(u, timeout=8), updates))
    finally:
        postgres.unpause()
    acknowledged = [u["update_id"] for u, s in zip(updates, statuses, strict=True) if s is not None and s < 300]
    assert not acknowledged, f"answered 2xx while nothing could be stored: {acknowledged}"
    telegram.deliver_until_acknowledged(updates, timeout_s=120)
    assert stored(stack, first_id, first_id + 19) == {str(first_id + i): 1 for i in range(20)}


def test_updates_sent_while_postgresql_is_paused_are_stored_exactly_once(
    kaizenity_stack: LocalEndpoints, telegram: Telegram
) -> None:
    pause_postgres_while_delivering(kaizenity_stack, telegram, 881_000)


def test_every_update_kind_is_understood(kaizenity_stack: LocalEndpoints, telegram: Telegram) -> None:
    chat = {"id": -1001, "type": "channel"}
    updates = [
        {**message(882_000, text="/start@kaizenity_bot hi"), "update_id": 882_000},
        {"update_id": 882_001, "edited_channel_post": {"message_id": 1, "date": 0, "chat": chat, "text": "edit"}},
        {"update_id": 882_002, "business_message": {"message_id": 2, "date": 0, "chat": {"id": 77}, "text": "biz"}},
    ]
    telegram.deliver_until_acknowledged(updates)
    rows = query(
        kaizenity_stack,
        "SELECT idempotency_key, kind, chat_id, body, command FROM ops.messages "
        "WHERE idempotency_key IN ('882000', '882001', '882002') ORDER BY 1",
    )
    assert rows == [
        ("882000", "message", "4242", "/start@kaizenity_bot hi", "/start"),
        ("882001", "edited_channel_post", "-1001", "edit", None),
        ("882002", "business_message", "77", "biz", None),
    ]


# --- outbound -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bot(kaizenity_stack: LocalEndpoints) -> Iterator[FakeTelegram]:
    """The faithful fake on the environment network's gateway address (where n8n's container reaches this host)."""
    network = docker.from_env().networks.get(kaizenity_stack.network)
    fake = FakeTelegram(network.attrs["IPAM"]["Config"][0]["Gateway"])
    reseed(kaizenity_stack, {"telegramApiBaseUrl": fake.base_url, "telegramBotToken": TOKEN})
    yield fake
    fake.close()
    reseed(kaizenity_stack)


def notify(stack: LocalEndpoints, recipient: str, body: str, payload: str = "{}", max_attempts: int = 5) -> int:
    (notification,) = query(
        stack,
        "INSERT INTO ops.notifications (channel, recipient, body, payload, max_attempts) "
        "VALUES ('telegram', %s, %s, %s::jsonb, %s) RETURNING id",
        recipient,
        body,
        payload,
        max_attempts,
    )[0]
    return int(notification)


def settled(stack: LocalEndpoints, notification: int, timeout_s: float = 45) -> tuple[str, int, str | None]:
    sql = "SELECT status, attempts, last_error FROM ops.notifications WHERE id = %s"
    return wait_until(  # type: ignore[no-any-return]
        lambda: (row := query(stack, sql, notification)[0])[0] in ("sent", "dead") and row, timeout_s, "settled"
    )


def test_markdown_and_html_characters_arrive_unchanged(kaizenity_stack: LocalEndpoints, bot: FakeTelegram) -> None:
    """Fails on the old workflow: the node's forced Markdown made the real API refuse `report_2026.pdf`."""
    body = "report_2026.pdf *draft [v2] `x` <b>not bold</b> & AT&T 1 < 2 > 0 &amp;"
    notification = notify(kaizenity_stack, "5001", body)
    assert settled(kaizenity_stack, notification)[:2] == ("sent", 1)
    assert [d.text for d in bot.delivered_to("5001")] == [body]


def test_a_5000_character_body_arrives_in_two_parts(kaizenity_stack: LocalEndpoints, bot: FakeTelegram) -> None:
    body = " ".join(f"w{i:04d}" for i in range(834))  # 834 words of 5 + 833 spaces = 5003 characters
    notification = notify(kaizenity_stack, "5002", body)
    assert settled(kaizenity_stack, notification)[0] == "sent"
    parts = [d.text for d in bot.delivered_to("5002")]
    assert len(parts) == 2
    assert all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == body, "split on a space, nothing lost, order kept"


def test_429_waits_retry_after(kaizenity_stack: LocalEndpoints, bot: FakeTelegram) -> None:
    bot.retry_after = 5
    bot.rate_limited["5003"] = 1
    notification = notify(kaizenity_stack, "5003", "after the flood")
    assert settled(kaizenity_stack, notification)[:2] == ("sent", 2)
    refused, accepted = [c for c in bot.sent_messages() if str(c.params.get("chat_id")) == "5003"]
    assert accepted.at - refused.at >= 5, "the retry came before retry_after"


def test_blocked_recipient_is_dead_lettered_at_once_and_not_sent_to_again(
    kaizenity_stack: LocalEndpoints, bot: FakeTelegram
) -> None:
    bot.blocked_chats.add("5004")
    first = notify(kaizenity_stack, "5004", "one")
    assert settled(kaizenity_stack, first) == ("dead", 1, "Forbidden: bot was blocked by the user")
    letters = query(kaizenity_stack, "SELECT error FROM ops.dead_letters WHERE source_id = %s", str(first))
    assert letters == [("Forbidden: bot was blocked by the user",)]
    calls_before = len(bot.sent_messages())
    second = notify(kaizenity_stack, "5004", "two")
    status, _, error = settled(kaizenity_stack, second)
    assert status == "dead"
    assert error
    assert "unreachable" in error
    assert len(bot.sent_messages()) == calls_before, "no send to a recipient that blocked the bot"


def test_chat_not_found_is_dead_lettered_at_once(kaizenity_stack: LocalEndpoints, bot: FakeTelegram) -> None:
    bot.missing_chats.add("5005")
    notification = notify(kaizenity_stack, "5005", "nobody")
    assert settled(kaizenity_stack, notification) == ("dead", 1, "Bad Request: chat not found")


def test_a_send_without_the_bot_apis_answer_is_retried_never_marked_sent(
    kaizenity_stack: LocalEndpoints, bot: FakeTelegram
) -> None:
    """A send node that "succeeds" without the Bot API's own answer (ok, result.message_id) is not a delivery:
    the `Telegram accepted?` gate retries it and dead-letters it after max_attempts with the reason. The same gate
    catches a send node that throws (n8n then passes its input item on as success). Fails on the workflow
    without the gate: the part was marked sent."""
    bot.impostor_chats.add("5009")
    notification = notify(kaizenity_stack, "5009", "anyone there?", max_attempts=2)
    status, attempts, reason = settled(kaizenity_stack, notification)
    assert (status, attempts) == ("dead", 2)
    assert (reason or "").startswith("no Bot API answer from the send node"), reason
    assert len([c for c in bot.sent_messages() if str(c.params.get("chat_id")) == "5009"]) == 2
    assert not bot.delivered_to("5009")


def test_button_press_round_trip(kaizenity_stack: LocalEndpoints, bot: FakeTelegram, telegram: Telegram) -> None:
    payload = '{"buttons": [{"text": "Approve", "choice": "approve"}, {"text": "Reject", "choice": "reject"}]}'
    notification = notify(kaizenity_stack, "5006", "Approve the invoice?", payload)
    assert settled(kaizenity_stack, notification)[0] == "sent"
    (sent,) = bot.delivered_to("5006")
    assert sent.reply_markup == {
        "inline_keyboard": [
            [
                {"text": "Approve", "callback_data": f"n:{notification}:approve"},
                {"text": "Reject", "callback_data": f"n:{notification}:reject"},
            ]
        ]
    }
    press = {
        "update_id": 883_000,
        "callback_query": {
            "id": "cbq-883000",
            "from": {"id": 5006, "is_bot": False, "first_name": "A"},
            "message": {"message_id": 1, "date": 0, "chat": {"id": 5006, "type": "private"}, "text": "Approve?"},
            "chat_instance": "1",
            "data": f"n:{notification}:reject",
        },
    }
    telegram.deliver_until_acknowledged([press])
    choice = "SELECT choice FROM ops.notifications WHERE id = %s"
    assert query(kaizenity_stack, choice, notification) == [("reject",)]
    answers = wait_until(lambda: [c for c in bot.calls if c.method == "answerCallbackQuery"], 20, "answerCallbackQuery")
    assert answers[0].params["callback_query_id"] == "cbq-883000"


def test_a_user_blocking_the_bot_stops_dispatch_to_them(
    kaizenity_stack: LocalEndpoints, bot: FakeTelegram, telegram: Telegram
) -> None:
    kicked = {
        "update_id": 884_000,
        "my_chat_member": {
            "chat": {"id": 5007, "type": "private"},
            "from": {"id": 5007, "is_bot": False, "first_name": "B"},
            "date": 0,
            "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "bot"}},
            "new_chat_member": {
                "status": "kicked",
                "until_date": 0,
                "user": {"id": 1, "is_bot": True, "first_name": "bot"},
            },
        },
    }
    telegram.deliver_until_acknowledged([kicked])
    notification = notify(kaizenity_stack, "5007", "are you there?")
    status, _, error = settled(kaizenity_stack, notification)
    assert status == "dead"
    assert error
    assert "my_chat_member: kicked" in error
    assert not [c for c in bot.sent_messages() if str(c.params.get("chat_id")) == "5007"]


# --- queue mode -----------------------------------------------------------------------------------------------


def kill_while_frozen(container: Any) -> None:
    """SIGKILL a paused container so it dies without running one more instruction.

    Unpausing first and then killing (the first version) left a window in which the thawed worker finished
    everything it held: on a quiet CI host all 200 updates were acknowledged and the test caught nothing in flight.
    A SIGKILL sent to the frozen process from the host is pending under the cgroup v1 freezer and taken on thaw,
    before user code resumes (cgroup v2 kills a frozen task at once); `docker kill` refuses a paused container.
    """
    container.reload()
    try:
        os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)
    except PermissionError:  # not root: the old, racy way
        container.unpause()
        container.kill(signal="SIGKILL")
        return
    with contextlib.suppress(docker.errors.APIError):  # cgroup v2: already dead, nothing to thaw
        container.unpause()
    wait_until(lambda: container.reload() or container.status == "exited", 30, "the killed worker gone")


def test_queue_mode_worker_sigkill_and_paused_postgresql_lose_no_acknowledged_update(
    request: pytest.FixtureRequest,
) -> None:
    """The issue's failure: with `onReceived`, 2-3 of 200 updates answered 200 were never stored after a worker
    SIGKILL (n8n 2.8.4 never re-runs a crashed execution). Now an answer comes only after the row is committed.

    Worker-1 is frozen (docker pause) for a few seconds under load before the kill, so the kill certainly finds it
    holding updates (the ones it was running, and those Redis handed to its pending fetch meanwhile): their
    senders get no answer, Telegram-style redelivery stores each of them once on the surviving worker."""
    try:  # issue 12's queue-mode fixture; this branch may be merged before it
        stack: LocalEndpoints = request.getfixturevalue("kaizenity_queue_stack")
    except pytest.FixtureLookupError:
        pytest.skip("needs the kaizenity_queue_stack fixture (issue 12's queue-mode stack)")
    assert stack.ca_file
    worker = docker.from_env().containers.get(stack.containers["n8n-worker-1"])
    updates = [message(885_000 + i, chat=885) for i in range(200)]
    with httpx.Client(verify=ssl.create_default_context(cafile=stack.ca_file), timeout=30) as client:
        telegram = Telegram(stack, client)
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(telegram.deliver, u, 20) for u in updates]
            wait_until(lambda: sum(f.done() for f in futures) >= 40, 300, "40 updates answered")
            worker.pause()
            time.sleep(3)
            kill_while_frozen(worker)
            statuses = [f.result() for f in futures]
        acknowledged = [u["update_id"] for u, s in zip(updates, statuses, strict=True) if s and 200 <= s < 300]
        assert len(acknowledged) < 200, "the SIGKILL caught no update in flight: nothing was tested"
        counts = stored(stack, 885_000, 885_199)
        lost = [i for i in acknowledged if counts.get(str(i)) != 1]
        assert not lost, f"{len(lost)} updates answered 2xx but not stored: {lost[:10]}"
        telegram.deliver_until_acknowledged(updates, timeout_s=180)  # the surviving worker takes them
        assert stored(stack, 885_000, 885_199) == {str(885_000 + i): 1 for i in range(200)}
        worker.start()  # later tests share the session environment
        wait_until(lambda: worker.reload() or worker.attrs["State"].get("Health", {}).get("Status") == "healthy",
                   180, "the killed worker healthy again")  # fmt: skip
        pause_postgres_while_delivering(stack, telegram, 886_000)
    print(f"\nqueue mode: {len(acknowledged)} of 200 answered 2xx around the SIGKILL, all stored")
