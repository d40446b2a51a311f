"""Property-based fuzzing of the whole GraphQL schema: no document makes the gateway fail.

hypothesis-graphql writes queries and mutations from the committed ``schema.graphql``
(a few with one deliberate schema violation), with our scalars' awkward values
(tests/fuzz_strategies.py), acting on a live dialog of the user; each is sent to the real app
as a plain user and as staff, with its arguments inline or lifted to variables (scalars
parse the two differently). Any answer may refuse the document — validation, limits,
NOT_FOUND, RATE_LIMITED, a 400 or a 413 — but none may be a 5xx, a body that is not JSON,
or an ``INTERNAL_SERVER_ERROR``; nor may a request leave a coroutine unawaited (warnings
are errors here; llm_gateway/schema/execution.py). Each would be a crash a client caused.

The documents are drawn first (a derandomized ``@given`` run, so CI sends the same ones
every time) and then sent from the async test, which owns the app's event loop; Hypothesis
cannot shrink a failure this way, so a failure prints the document and the answer whole.
PostgreSQL only: it is the stricter database (NUL, text encoding, NUMERIC and BIGINT
bounds), and one backend keeps the file within the suite's time budget.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis_graphql import Mode, mutations, queries

from tests.chat_support import finished, send
from tests.fuzz_strategies import Request, as_request, custom_scalars, weighted
from tests.support import GraphQLClient, token

pytestmark = pytest.mark.postgres_only

SCHEMA = graphql.build_schema((Path(__file__).parents[2] / "schema.graphql").read_text())
USER, STAFF = 1, 900
EXAMPLES = 300
"""Documents per operation type, each sent twice: ~20 s for the file on an idle 2-core machine."""
Documents = st.SearchStrategy[graphql.DocumentNode]


def same(document: graphql.DocumentNode) -> graphql.DocumentNode:
    """hypothesis-graphql's ``print_ast``: keep the tree, to lift its arguments or not."""
    return document


def documents(kind: Any) -> Documents:
    """``kind``'s documents: often one root field, mostly without explicit nulls.

    A mutation that fails stops the ones after it, and strawberry refuses ``null`` for an
    input field that may be left out but not cleared: with several fields and nulls
    everywhere, most documents would stop before the resolvers that matter.
    """
    scalars = custom_scalars()
    root = SCHEMA.query_type if kind is queries else SCHEMA.mutation_type
    assert root is not None

    def of(
        allow_null: bool, fields: list[str] | None = None, mode: Mode = Mode.POSITIVE
    ) -> Documents:
        strategy: Documents = kind(
            SCHEMA,
            fields=fields,
            custom_scalars=scalars,
            allow_null=allow_null,
            print_ast=same,
            mode=mode,
        )
        return strategy

    one_field = st.one_of([of(False, [name]) for name in sorted(root.fields)])
    return weighted(
        (4, one_field), (4, of(False)), (2, of(True)), (1, of(True, mode=Mode.NEGATIVE))
    )


@pytest.fixture(autouse=True)
def hypothesis_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hypothesis's caches (its example database is off) go to a temporary directory,
    not to a ``.hypothesis`` in the working tree."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


def draw_requests(strategy: Documents) -> list[Request]:
    """``EXAMPLES`` requests, the same on every run (``derandomize``; no example database)."""
    drawn: list[Request] = []

    # Health checks judge a test's own data generation; here the draw is all there is,
    # and GraphQL documents are big and slow to draw by design.
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(document=strategy, lift=st.booleans())
    def collect(document: graphql.DocumentNode, lift: bool) -> None:
        drawn.append(as_request(SCHEMA, document, lift))

    collect()
    return drawn


async def live_dialog(
    gql: GraphQLClient, app: Any, before: dict[str, str] | None = None
) -> dict[str, str]:
    """The user's dialog with a finished answer: the ids the documents' ``LIVE`` stand for.

    A new one once the documents deleted the last; if they made that impossible (staff
    set the user's limits to zero, say), the ids ``before`` serve on.
    """
    created = await gql("mutation { createDialog(input: {}) { id } }", user=USER)
    if created.errors:
        assert before is not None, created.errors
        return before
    dialog = created.data["createDialog"]["id"]
    sent = await send(gql, dialog, user=USER)
    if sent.errors:
        assert before is not None, sent.errors
        return {**before, "dialog": dialog}
    question, answer = (
        sent.data["sendMessage"][m]["id"] for m in ("userMessage", "assistantMessage")
    )
    await finished(app, answer)
    return {"dialog": dialog, "question": question, "answer": answer}


def problem(response: httpx.Response) -> str | None:
    """Why ``response`` is a server failure rather than a refusal, or None."""
    if response.status_code >= 500:
        return f"HTTP {response.status_code}"
    try:
        body = response.json()
    except json.JSONDecodeError:
        return "a body that is not JSON"
    errors = (body.get("errors") or []) if isinstance(body, dict) else []
    if any((e.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR" for e in errors):
        return "INTERNAL_SERVER_ERROR"
    return None


async def exists(gql: GraphQLClient, dialog: str) -> bool:
    result = await gql("query($id: UUID!) { dialog(id: $id) { id } }", {"id": dialog}, user=USER)
    return result.data is not None


def outcomes(response: httpx.Response) -> list[str]:
    """The codes of the answer's errors, or OK."""
    errors = response.json().get("errors") or []
    return [str((e.get("extensions") or {}).get("code")) for e in errors] or ["OK"]


async def fuzz(http: httpx.AsyncClient, gql: GraphQLClient, app: Any, kind: Any) -> Counter[str]:
    """Send every drawn request as the user and as staff; fail with every crash found."""
    requests = draw_requests(documents(kind))
    live = await live_dialog(gql, app)
    failures: list[str] = []
    seen: Counter[str] = Counter()
    for request in requests:
        for user, staff in ((USER, False), (STAFF, True)):
            response = await http.post(
                "/graphql",
                content=request.body(live),
                headers={
                    "Authorization": f"Bearer {token(user, staff=staff)}",
                    "Content-Type": "application/json",
                },
            )
            why = problem(response)
            if why is not None:
                who = "staff" if staff else "user"
                failures.append(f"{why} as {who} for\n{request}\n-> {response.text[:2000]}")
                continue
            seen.update(outcomes(response))
        if "deleteDialog" in request.query and not await exists(gql, live["dialog"]):
            live = await live_dialog(gql, app, live)  # the later documents need one
    assert not failures, f"{len(failures)} crashes:\n\n" + "\n\n".join(failures[:5])
    return seen


async def test_generated_queries_never_crash(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Any
) -> None:
    seen = await fuzz(http, gql, app, queries)
    # The documents reached the resolvers: many were answered, not only refused.
    assert seen["OK"] >= EXAMPLES // 10, seen


async def test_generated_mutations_never_crash(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Any
) -> None:
    seen = await fuzz(http, gql, app, mutations)
    assert seen["OK"] >= EXAMPLES // 20, seen
