"""Staff reads across users: allDialogs, userTransactions for everyone, auditLogs and
usageStats, with their filters, pages, inclusive date ranges and hand-computed numbers."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, update

from llm_gateway.db.models import Dialog, Message
from llm_gateway.services.chat import dialogs
from tests.factories import add_message, create_dialog, database_of
from tests.support import GraphQLClient, Result

STAFF_ID = 900
UTC = dt.UTC


async def staff(gql: GraphQLClient, query: str, variables: dict[str, Any] | None = None) -> Result:
    return await gql(query, variables or {}, user=STAFF_ID, staff=True)


def at(day: str, time: str = "12:00:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=UTC)


def today() -> dt.date:
    return dt.datetime.now(UTC).date()


async def backdate(app: Any, dialog_id: uuid.UUID, moment: dt.datetime) -> None:
    async with database_of(app).transaction() as session:
        await session.execute(
            update(Dialog).where(Dialog.id == dialog_id).values(created_at=moment)
        )


@contextmanager
def count_statements(app: Any) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = database_of(app).engine.sync_engine

    def record(*args: Any) -> None:
        if not args[2].startswith(("BEGIN", "ROLLBACK", "COMMIT")):
            statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def walk(
    gql: GraphQLClient, query: str, field: str, variables: dict[str, Any]
) -> list[list[Any]]:
    """Every page of ``field`` (nodes per page), following endCursor to the end."""
    pages: list[list[Any]] = []
    after = None
    while True:
        data = (await staff(gql, query, {**variables, "after": after})).ok()[field]
        pages.append([edge["node"] for edge in data["edges"]])
        if not data["pageInfo"]["hasNextPage"]:
            return pages
        after = data["pageInfo"]["endCursor"]


# --- usageStats ----------------------------------------------------------------------------


async def answer(
    app: Any,
    dialog_id: uuid.UUID,
    *,
    user: int,
    model: str,
    moment: dt.datetime,
    prompt: int,
    completion: int,
    charged: int,
    cost: str | None,
    total_ms: int | None,
    status: str = "complete",
) -> None:
    """An assistant message as a finished generation leaves it, at a chosen time."""
    async with database_of(app).transaction() as session:
        session.add(
            Message(
                dialog_id=dialog_id,
                user_id=user,
                role="assistant",
                content="answer",
                status=status,
                model_name=model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                charged_tokens=charged,
                cost_usd=None if cost is None else Decimal(cost),
                error_code="PROVIDER_UNAVAILABLE" if status == "failed" else None,
                total_ms=total_ms,
                created_at=moment,
                completed_at=moment,
            )
        )


@pytest.fixture
async def usage(app: Any) -> None:
    """Assistant answers from 2026-02-28 to 2026-03-04; the reports ask for 03-01..03-03."""
    eleven = await create_dialog(app, 11)
    twelve = await create_dialog(app, 12)
    gpt, claude = "gpt-4-turbo", "claude-3-opus"
    rows = [
        # user, model, day, time, prompt, completion, charged, cost, total_ms, status
        # 03-01: the first instant of the range is in it.
        (11, gpt, "2026-03-01", "00:00:00", 100, 50, 150, "0.0025", 100, "complete"),
        (12, gpt, "2026-03-01", "12:00:00", 200, 100, 300, "0.005", 200, "complete"),
        # A failure: an error, and its time is no latency.
        (11, claude, "2026-03-01", "13:00:00", 50, 0, 0, None, 999, "failed"),
        # 03-02: nothing. 03-03: the last instant of `to` is in the range.
        (12, claude, "2026-03-03", "23:59:59.999999", 300, 300, 600, "0.027", 400, "complete"),
        (11, gpt, "2026-03-03", "08:00:00", 10, 10, 20, "0.0004", 1000, "complete"),
        # Cancelled: counted and charged, neither an error nor a latency.
        (12, gpt, "2026-03-03", "09:00:00", 10, 5, 15, "0.00025", 50, "cancelled"),
        # Just outside the range.
        (11, gpt, "2026-02-28", "23:59:59.999999", 1000, 1000, 2000, "1", 5, "complete"),
        (12, gpt, "2026-03-04", "00:00:00", 1000, 1000, 2000, "1", 5, "complete"),
    ]
    for user, model, day, time, prompt, completion, charged, cost, total_ms, status in rows:
        await answer(
            app,
            eleven if user == 11 else twelve,
            user=user,
            model=model,
            moment=at(day, time),
            prompt=prompt,
            completion=completion,
            charged=charged,
            cost=cost,
            total_ms=total_ms,
            status=status,
        )
    # The user's own messages are no requests.
    await add_message(app, eleven, 11, "question", at=at("2026-03-01"))


USAGE = """query($from: Date!, $to: Date!, $groupBy: UsageGroupBy!) {
  usageStats(from: $from, to: $to, groupBy: $groupBy) {
    from to groupBy
    rows { ...Row }
    total { ...Row }
  }
}
fragment Row on UsageRow {
  key requests promptTokens completionTokens chargedTokens costUsd errors
  latencyP50Ms latencyP95Ms
}"""
RANGE = {"from": "2026-03-01", "to": "2026-03-03"}


def usage_row(
    key: str,
    sums: tuple[int, int, int, int, str, int],
    p50: float | None,
    p95: float | None,
) -> dict[str, Any]:
    requests, prompt, completion, charged, cost, errors = sums
    return {
        "key": key,
        "requests": requests,
        "promptTokens": prompt,
        "completionTokens": completion,
        "chargedTokens": charged,
        "costUsd": Decimal(cost),
        "errors": errors,
        "latencyP50Ms": p50 if p50 is None else pytest.approx(p50),
        "latencyP95Ms": p95 if p95 is None else pytest.approx(p95),
    }


def normalised(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "costUsd": Decimal(row["costUsd"])}


# Latencies of complete answers: 100, 200 (03-01), 400, 1000 (03-03). percentile_cont
# interpolates at fraction·(n-1): for [100, 200] the p95 is 100 + 0.95·100 = 195.
TOTAL = usage_row("total", (6, 670, 465, 1085, "0.03515", 1), 300.0, 910.0)


async def test_usage_by_day_lists_every_day_with_hand_computed_numbers(
    gql: GraphQLClient, usage: None
) -> None:
    stats = (await staff(gql, USAGE, {**RANGE, "groupBy": "DAY"})).ok()["usageStats"]
    assert (stats["from"], stats["to"], stats["groupBy"]) == ("2026-03-01", "2026-03-03", "DAY")
    assert [normalised(r) for r in stats["rows"]] == [
        usage_row("2026-03-01", (3, 350, 150, 450, "0.0075", 1), 150.0, 195.0),
        usage_row("2026-03-02", (0, 0, 0, 0, "0", 0), None, None),
        usage_row("2026-03-03", (3, 320, 315, 635, "0.02765", 0), 700.0, 970.0),
    ]
    assert normalised(stats["total"]) == TOTAL


async def test_usage_by_model_most_charged_first(gql: GraphQLClient, usage: None) -> None:
    stats = (await staff(gql, USAGE, {**RANGE, "groupBy": "MODEL"})).ok()["usageStats"]
    assert [normalised(r) for r in stats["rows"]] == [
        usage_row("claude-3-opus", (2, 350, 300, 600, "0.027", 1), 400.0, 400.0),
        # [100, 200, 1000]: p50 the middle one, p95 at 1.9 = 200 + 0.9·800.
        usage_row("gpt-4-turbo", (4, 320, 165, 485, "0.00815", 0), 200.0, 920.0),
    ]
    assert normalised(stats["total"]) == TOTAL


async def test_usage_by_user(gql: GraphQLClient, usage: None) -> None:
    stats = (await staff(gql, USAGE, {**RANGE, "groupBy": "USER"})).ok()["usageStats"]
    assert [normalised(r) for r in stats["rows"]] == [
        usage_row("12", (3, 510, 405, 915, "0.03225", 0), 300.0, 390.0),
        usage_row("11", (3, 160, 60, 170, "0.0029", 1), 550.0, 955.0),
    ]
    assert normalised(stats["total"]) == TOTAL


async def test_usage_of_a_single_day_and_of_an_empty_range(gql: GraphQLClient, usage: None) -> None:
    one_day = {"from": "2026-03-03", "to": "2026-03-03", "groupBy": "DAY"}
    stats = (await staff(gql, USAGE, one_day)).ok()["usageStats"]
    assert [r["key"] for r in stats["rows"]] == ["2026-03-03"]
    assert stats["total"]["requests"] == 3

    empty = {"from": "2025-01-01", "to": "2025-01-31", "groupBy": "MODEL"}
    stats = (await staff(gql, USAGE, empty)).ok()["usageStats"]
    assert stats["rows"] == []
    assert normalised(stats["total"]) == usage_row("total", (0, 0, 0, 0, "0", 0), None, None)


@pytest.mark.parametrize(
    ("since", "until", "ok"),
    [
        ("2026-03-02", "2026-03-01", False),  # from after to
        ("2025-01-01", "2026-01-01", True),  # 366 days, both ends included
        ("2025-01-01", "2026-01-02", False),  # 367 days
    ],
)
async def test_usage_range_is_checked(gql: GraphQLClient, since: str, until: str, ok: bool) -> None:
    result = await staff(gql, USAGE, {"from": since, "to": until, "groupBy": "DAY"})
    if ok:
        assert len(result.ok()["usageStats"]["rows"]) == 366
    else:
        assert result.codes == ["VALIDATION_FAILED"]


# --- allDialogs ----------------------------------------------------------------------------

ALL_DIALOGS = """query($first: Int, $after: String, $userId: SafeInt, $model: String, $from: Date,
                      $to: Date, $deleted: Boolean) {
  allDialogs(first: $first, after: $after, userId: $userId, model: $model, from: $from,
             to: $to, deleted: $deleted) {
    edges { node { id title userId deletedAt model { name } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def dialog_titles(gql: GraphQLClient, **variables: Any) -> list[str]:
    pages = await walk(gql, ALL_DIALOGS, "allDialogs", {"first": 2, **variables})
    return [node["title"] for page in pages for node in page]


async def test_all_dialogs_across_users_newest_first_with_filters(
    gql: GraphQLClient, app: Any
) -> None:
    midnight = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    ids = {}
    for title, owner, model in [
        ("a", 5, None),
        ("b", 6, "gpt-4-turbo"),
        ("c", 5, "gpt-4-turbo"),
        ("d", 7, None),
        ("e", 6, None),
    ]:
        ids[title] = await create_dialog(app, owner, title=title, model=model)
    # "a" was created in the last instant of yesterday, "b" the day before.
    await backdate(app, ids["a"], midnight - dt.timedelta(microseconds=1))
    await backdate(app, ids["b"], midnight - dt.timedelta(days=2))
    async with database_of(app).transaction() as session:
        await dialogs.delete_dialog(session, 7, ids["d"])

    assert await dialog_titles(gql) == ["e", "c", "a", "b"]  # pages of 2, walked
    assert await dialog_titles(gql, userId=6) == ["e", "b"]
    assert await dialog_titles(gql, model="gpt-4-turbo") == ["c", "b"]
    assert await dialog_titles(gql, model="no-such-model") == []
    assert await dialog_titles(gql, deleted=True) == ["d"]
    assert await dialog_titles(gql, deleted=None) == ["e", "d", "c", "a", "b"]

    yesterday = (midnight - dt.timedelta(days=1)).date().isoformat()
    day_before = (midnight - dt.timedelta(days=2)).date().isoformat()
    assert await dialog_titles(gql, to=yesterday) == ["a", "b"]  # `to` includes its day
    assert await dialog_titles(gql, **{"from": yesterday, "to": yesterday}) == ["a"]
    assert await dialog_titles(gql, **{"from": day_before, "to": day_before}) == ["b"]
    assert await dialog_titles(gql, **{"from": today().isoformat()}) == ["e", "c"]

    first = (await staff(gql, ALL_DIALOGS, {"first": 1, "userId": 7, "deleted": None})).ok()
    node = first["allDialogs"]["edges"][0]["node"]
    assert node["userId"] == 7
    assert node["deletedAt"] is not None
    assert node["model"]["name"] == "mock"


async def test_all_dialogs_refuses_a_bad_range_and_a_bad_cursor(gql: GraphQLClient) -> None:
    backwards = await staff(gql, ALL_DIALOGS, {"from": "2026-03-02", "to": "2026-03-01"})
    assert backwards.codes == ["VALIDATION_FAILED"]
    assert (await staff(gql, ALL_DIALOGS, {"after": "bm9wZQ"})).codes == ["VALIDATION_FAILED"]
    too_many = await staff(gql, ALL_DIALOGS, {"first": 10_000})
    assert too_many.codes == ["VALIDATION_FAILED"]


STAFF_MESSAGES = """query($userId: SafeInt, $first: Int, $after: String) {
  allDialogs(userId: $userId) { edges { node { title
    messages(first: $first, after: $after) {
      edges { cursor node { content role } }
      pageInfo { hasNextPage hasPreviousPage endCursor }
    }
  } } }
}"""


async def test_staff_dialogs_page_their_messages_oldest_first(gql: GraphQLClient, app: Any) -> None:
    dialog_id = await create_dialog(app, 5, title="chat")
    other = await create_dialog(app, 5, title="quiet")
    start = dt.datetime.now(UTC) - dt.timedelta(hours=1)
    for i in range(5):
        await add_message(app, dialog_id, 5, f"m{i}", at=start + dt.timedelta(minutes=i))

    first = (await staff(gql, STAFF_MESSAGES, {"userId": 5, "first": 2})).ok()
    by_title = {e["node"]["title"]: e["node"]["messages"] for e in first["allDialogs"]["edges"]}
    assert by_title["quiet"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "endCursor": None},
    }
    chat = by_title["chat"]
    assert [e["node"]["content"] for e in chat["edges"]] == ["m0", "m1"]
    assert chat["pageInfo"]["hasNextPage"] is True

    after = {"userId": 5, "first": 2, "after": chat["pageInfo"]["endCursor"]}
    second = (await staff(gql, STAFF_MESSAGES, after)).ok()
    by_title = {e["node"]["title"]: e["node"]["messages"] for e in second["allDialogs"]["edges"]}
    assert [e["node"]["content"] for e in by_title["chat"]["edges"]] == ["m2", "m3"]
    assert by_title["chat"]["pageInfo"]["hasPreviousPage"] is True

    # The owner's own messages() takes the same cursors.
    own = (
        await gql(
            "query($d: UUID!, $a: String) { messages(dialogId: $d, first: 10, after: $a) "
            "{ edges { node { content } } } }",
            {"d": str(dialog_id), "a": chat["pageInfo"]["endCursor"]},
            user=5,
        )
    ).ok()
    assert [e["node"]["content"] for e in own["messages"]["edges"]] == ["m2", "m3", "m4"]
    assert other  # the quiet dialog exists, with no messages


async def test_messages_of_a_dialog_page_are_loaded_in_one_statement(
    gql: GraphQLClient, app: Any
) -> None:
    async def fill(owner: int, count: int) -> None:
        for i in range(count):
            dialog_id = await create_dialog(app, owner, title=f"d{i}")
            for j in range(3):
                await add_message(app, dialog_id, owner, f"{i}.{j}")

    await fill(5, 2)
    await fill(6, 12)
    query = "query($u: SafeInt) { allDialogs(userId: $u, first: 50) { edges { node { title " \
        "messages(first: 2) { edges { node { content } } } } } } }"  # fmt: skip
    with count_statements(app) as small:
        two = (await staff(gql, query, {"u": 5})).ok()["allDialogs"]["edges"]
    with count_statements(app) as large:
        twelve = (await staff(gql, query, {"u": 6})).ok()["allDialogs"]["edges"]
    assert len(two) == 2
    assert len(twelve) == 12
    assert all(len(e["node"]["messages"]["edges"]) == 2 for e in twelve)
    assert len(small) == len(large) == 2, large  # the page, then one batch of messages


# --- userTransactions across users ---------------------------------------------------------

LEDGER = """query($userId: SafeInt, $first: Int, $after: String, $kind: TransactionKind,
                  $from: Date, $to: Date) {
  userTransactions(userId: $userId, first: $first, after: $after, kind: $kind, from: $from,
                   to: $to) {
    edges { node { userId kind amount reason } }
    pageInfo { hasNextPage endCursor }
  }
}"""
TOP_UP = """mutation($input: TopUpBalanceInput!) { topUpBalance(input: $input) { replayed } }"""


async def ledger(gql: GraphQLClient, **variables: Any) -> list[tuple[int, str, int]]:
    pages = await walk(gql, LEDGER, "userTransactions", {"first": 2, **variables})
    return [(n["userId"], n["kind"], n["amount"]) for page in pages for n in page]


async def test_transactions_of_every_user_newest_first_with_filters(gql: GraphQLClient) -> None:
    for user in (7, 8):
        (await gql("{ me { userId } }", user=user)).ok()  # each is granted 10,000
    for user, amount in ((7, 5), (8, 6), (7, 7)):
        variables = {"input": {"userId": user, "amount": amount, "reason": f"r{amount}"}}
        (await staff(gql, TOP_UP, variables)).ok()

    everything = [(7, "TOPUP", 7), (8, "TOPUP", 6), (7, "TOPUP", 5), (8, "GRANT", 10_000),
                  (7, "GRANT", 10_000)]  # fmt: skip
    assert await ledger(gql) == everything  # pages of 2, walked
    assert await ledger(gql, kind="GRANT") == [(8, "GRANT", 10_000), (7, "GRANT", 10_000)]
    assert await ledger(gql, userId=7) == [(7, "TOPUP", 7), (7, "TOPUP", 5), (7, "GRANT", 10_000)]
    assert await ledger(gql, userId=7, kind="TOPUP") == [(7, "TOPUP", 7), (7, "TOPUP", 5)]

    day = today()
    assert await ledger(gql, **{"from": day.isoformat(), "to": day.isoformat()}) == everything
    assert await ledger(gql, to=(day - dt.timedelta(days=1)).isoformat()) == []
    assert await ledger(gql, **{"from": (day + dt.timedelta(days=1)).isoformat()}) == []
    assert await ledger(gql, userId=8, to=day.isoformat()) == [
        (8, "TOPUP", 6),
        (8, "GRANT", 10_000),
    ]
    backwards = {"from": day.isoformat(), "to": (day - dt.timedelta(days=1)).isoformat()}
    assert (await staff(gql, LEDGER, backwards)).codes == ["VALIDATION_FAILED"]


async def test_cursors_of_one_users_ledger_do_not_fit_the_all_users_one(
    gql: GraphQLClient,
) -> None:
    (await gql("{ me { userId } }", user=7)).ok()
    (await staff(gql, TOP_UP, {"input": {"userId": 7, "amount": 5, "reason": "r"}})).ok()
    own = (await staff(gql, LEDGER, {"userId": 7, "first": 1})).ok()["userTransactions"]
    cursor = own["pageInfo"]["endCursor"]
    assert (await staff(gql, LEDGER, {"first": 1, "after": cursor})).codes == ["VALIDATION_FAILED"]


# --- auditLogs -------------------------------------------------------------------------------

AUDIT = """query($first: Int, $after: String, $actorId: SafeInt, $action: String,
                 $resourceType: String, $resourceId: String, $from: Date, $to: Date) {
  auditLogs(first: $first, after: $after, actorId: $actorId, action: $action,
            resourceType: $resourceType, resourceId: $resourceId, from: $from, to: $to) {
    edges { node { id actorId action resourceType resourceId before after ipAddress
                   userAgent requestId createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def audit(gql: GraphQLClient, **variables: Any) -> list[tuple[int, str, str]]:
    pages = await walk(gql, AUDIT, "auditLogs", {"first": 2, **variables})
    return [(n["actorId"], n["action"], n["resourceId"]) for page in pages for n in page]


async def test_audit_log_newest_first_with_filters(gql: GraphQLClient) -> None:
    async def act(actor: int, document: str, variables: dict[str, Any]) -> None:
        (await gql(document, variables, user=actor, staff=True)).ok()

    await act(900, TOP_UP, {"input": {"userId": 7, "amount": 5, "reason": "welcome"}})
    limits = "mutation($input: SetBalanceLimitsInput!) { setBalanceLimits(input: $input) " \
        "{ userId } }"  # fmt: skip
    await act(901, limits, {"input": {"userId": 8, "dailyLimit": 100}})
    await act(900, TOP_UP, {"input": {"userId": 8, "amount": 6, "reason": "again"}})
    config = "mutation($input: SetConfigInput!) { setConfig(input: $input) { key } }"
    await act(901, config, {"input": {"key": "SOME_FLAG", "value": "on"}})

    assert await audit(gql) == [
        (901, "config.set", "SOME_FLAG"),
        (900, "balance.topup", "8"),
        (901, "balance.set_limits", "8"),
        (900, "balance.topup", "7"),
    ]
    assert await audit(gql, actorId=901) == [
        (901, "config.set", "SOME_FLAG"),
        (901, "balance.set_limits", "8"),
    ]
    assert await audit(gql, action="balance.topup") == [
        (900, "balance.topup", "8"),
        (900, "balance.topup", "7"),
    ]
    assert await audit(gql, resourceType="balance", resourceId="8") == [
        (900, "balance.topup", "8"),
        (901, "balance.set_limits", "8"),
    ]
    assert await audit(gql, resourceType="system_config") == [(901, "config.set", "SOME_FLAG")]
    day = today()
    assert len(await audit(gql, **{"from": day.isoformat(), "to": day.isoformat()})) == 4
    assert await audit(gql, to=(day - dt.timedelta(days=1)).isoformat()) == []

    page = (await staff(gql, AUDIT, {"first": 1, "action": "balance.topup"})).ok()
    entry = page["auditLogs"]["edges"][0]["node"]
    assert entry["resourceType"] == "balance"
    assert entry["before"] == {"balance": 10_000, "reserved": 0}
    assert entry["after"] == {"balance": 10_006, "amount": 6, "reason": "again"}
    assert entry["ipAddress"]
    assert entry["requestId"]
    assert dt.datetime.fromisoformat(entry["createdAt"]).date() == day


# --- staff only ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (ALL_DIALOGS, {}),
        (AUDIT, {}),
        (USAGE, {**RANGE, "groupBy": "DAY"}),
        (LEDGER, {}),
    ],
    ids=["allDialogs", "auditLogs", "usageStats", "userTransactions"],
)
async def test_users_are_refused(
    gql: GraphQLClient, document: str, variables: dict[str, Any]
) -> None:
    result = await gql(document, variables, user=7)
    assert result.codes == ["FORBIDDEN"]
    assert result.data is None
