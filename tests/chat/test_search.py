"""Full-text search over messages: word forms, owners, snippets, pages, hostile queries."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, text, update

from llm_gateway.db.models import Message
from llm_gateway.db.search_index import FTS_TABLE
from llm_gateway.services.chat.search.terms import MAX_QUERY_LENGTH, search_terms
from tests.factories import add_message, create_dialog, database_of
from tests.platform.test_query_counts import count_statements
from tests.support import GraphQLClient

SEARCH = """
query($query: String!, $first: Int, $after: String, $dialogId: UUID, $userId: SafeInt) {
  searchMessages(query: $query, first: $first, after: $after, dialogId: $dialogId,
                 userId: $userId) {
    edges { cursor node { snippet rank message { id content } dialog { id title } } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
DIALOGS = """
query($search: String) { dialogs(search: $search) { edges { node { title } } } }"""
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def search(gql: GraphQLClient, query: str, user: int = 1, **variables: Any) -> Any:
    return await gql(SEARCH, {"query": query, **variables}, user=user)


async def found(gql: GraphQLClient, query: str, user: int = 1, **variables: Any) -> list[str]:
    """The contents of the hits, best first."""
    result = (await search(gql, query, user, **variables)).ok()["searchMessages"]
    return [edge["node"]["message"]["content"] for edge in result["edges"]]


async def write(app: Any, owner: int, *contents: str, title: str = "d") -> uuid.UUID:
    """A dialog of ``owner`` holding ``contents``, in that order."""
    dialog_id = await create_dialog(app, owner, title=title)
    for i, content in enumerate(contents):
        await add_message(app, dialog_id, owner, content, at=START + dt.timedelta(minutes=i))
    return dialog_id


async def test_english_word_forms_match(gql: GraphQLClient, app: Any) -> None:
    await write(app, 1, "Two zebras were running", "A lonely zebra", "Nothing here")
    assert sorted(await found(gql, "zebra")) == ["A lonely zebra", "Two zebras were running"]
    assert sorted(await found(gql, "ZEBRAS")) == ["A lonely zebra", "Two zebras were running"]
    assert await found(gql, "zebras run") == ["Two zebras were running"]
    # Every word must match.
    assert await found(gql, "zebra giraffe") == []


async def test_russian_word_forms_match(gql: GraphQLClient, app: Any) -> None:
    await write(app, 1, "Мои кошки спят", "Гуляю с кошкой", "Собака лает", "Ёлка в лесу")
    assert sorted(await found(gql, "кошка")) == ["Гуляю с кошкой", "Мои кошки спят"]
    assert sorted(await found(gql, "Кошки")) == ["Гуляю с кошкой", "Мои кошки спят"]
    assert await found(gql, "собаки") == ["Собака лает"]
    assert await found(gql, "ёлки") == ["Ёлка в лесу"]
    assert await found(gql, "кошки собака") == []


async def test_mixed_languages_and_stop_words(gql: GraphQLClient, app: Any) -> None:
    await write(app, 1, "The zebras and кошки are friends")
    assert await found(gql, "the zebra и кошка") == ["The zebras and кошки are friends"]
    # Only stop words: nothing to look for, so nothing is found (not an error).
    assert await found(gql, "the and и") == []


async def test_another_user_finds_nothing_but_staff_may_look(gql: GraphQLClient, app: Any) -> None:
    await write(app, 1, "my secret zebra")
    await write(app, 2, "a zebra of my own")
    assert await found(gql, "zebra", user=1) == ["my secret zebra"]
    assert await found(gql, "zebra", user=2) == ["a zebra of my own"]
    assert await found(gql, "zebra", user=3) == []
    assert (await search(gql, "zebra", user=2, userId=1)).codes == ["FORBIDDEN"]
    assert await found(gql, "zebra", user=2, userId=2) == ["a zebra of my own"]
    staff = (await gql(SEARCH, {"query": "zebra", "userId": 1}, user=900, staff=True)).ok()
    assert [e["node"]["message"]["content"] for e in staff["searchMessages"]["edges"]] == [
        "my secret zebra"
    ]


async def test_deleted_dialogs_are_not_searched(gql: GraphQLClient, app: Any) -> None:
    kept = await write(app, 1, "zebra kept", title="kept")
    gone = await write(app, 1, "zebra gone", title="gone")
    assert sorted(await found(gql, "zebra")) == ["zebra gone", "zebra kept"]
    deleted = await gql(
        "mutation($id: UUID!) { deleteDialog(input: {id: $id}) { id } }", {"id": str(gone)}
    )
    deleted.ok()
    assert await found(gql, "zebra") == ["zebra kept"]
    assert (await search(gql, "zebra", dialogId=str(gone))).codes == ["NOT_FOUND"]
    assert await found(gql, "zebra", dialogId=str(kept)) == ["zebra kept"]


async def test_dialog_id_narrows_the_search(gql: GraphQLClient, app: Any) -> None:
    first = await write(app, 1, "zebra one", title="one")
    await write(app, 1, "zebra two", title="two")
    result = (await search(gql, "zebra", dialogId=str(first))).ok()["searchMessages"]
    assert [
        (e["node"]["message"]["content"], e["node"]["dialog"]["title"]) for e in result["edges"]
    ] == [("zebra one", "one")]
    other = await write(app, 2, "zebra three")
    assert (await search(gql, "zebra", dialogId=str(other))).codes == ["NOT_FOUND"]


async def test_snippets_mark_matches_and_escape_html(gql: GraphQLClient, app: Any) -> None:
    long_text = " ".join(["filler"] * 60 + ["Zebras", "<b>&", "cats</b>"] + ["filler"] * 60)
    await write(app, 1, '<script>alert("x")</script> zebras & <i>кошки</i>', long_text)
    result = (await search(gql, "zebra кошка")).ok()["searchMessages"]["edges"]
    assert [e["node"]["snippet"] for e in result] == [
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; <mark>zebras</mark> &amp; "
        "&lt;i&gt;<mark>кошки</mark>&lt;/i&gt;"
    ]
    cut = (await search(gql, "zebra")).ok()["searchMessages"]["edges"]
    snippet = next(
        e["node"]["snippet"] for e in cut if e["node"]["message"]["content"] == long_text
    )
    assert snippet.startswith("… ")
    assert snippet.endswith(" …")
    assert "<mark>Zebras</mark> &lt;b&gt;&amp; cats&lt;/b&gt;" in snippet
    assert len(snippet) < 300


async def test_more_occurrences_rank_higher(gql: GraphQLClient, app: Any) -> None:
    await write(app, 1, "zebra said one word among many other words", "zebra zebra zebra")
    result = (await search(gql, "zebra")).ok()["searchMessages"]["edges"]
    assert [e["node"]["message"]["content"] for e in result] == [
        "zebra zebra zebra",
        "zebra said one word among many other words",
    ]
    assert result[0]["node"]["rank"] > result[1]["node"]["rank"] > 0


async def test_pages_follow_rank_then_id_without_gaps(gql: GraphQLClient, app: Any) -> None:
    # Equal ranks in pairs, so the id breaks ties across page boundaries.
    texts = [f"{'zebra ' * (1 + i // 2)}story {i}" for i in range(7)]
    dialog_id = await write(app, 1, *texts)
    seen: list[str] = []
    ranks: list[float] = []
    after = None
    while True:
        page = (await search(gql, "zebra", first=2, after=after)).ok()["searchMessages"]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [e["node"]["message"]["content"] for e in page["edges"]]
        ranks += [e["node"]["rank"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        # Messages written between pages (matching or not) do not move the cursor.
        await add_message(app, dialog_id, 1, f"zebra late {len(seen)}")
        await add_message(app, dialog_id, 2, "zebra zebra of someone else")
    originals = [text for text in seen if "story" in text]
    assert sorted(originals) == sorted(texts)
    assert len(seen) == len(set(seen))
    assert ranks == sorted(ranks, reverse=True)
    by_count = [originals[:1], originals[1:3], originals[3:5], originals[5:]]
    assert [set(group) for group in by_count] == [
        {texts[6]},
        {texts[4], texts[5]},
        {texts[2], texts[3]},
        {texts[0], texts[1]},
    ]


async def test_the_index_follows_edits_and_deletes(
    gql: GraphQLClient, app: Any, backend: str
) -> None:
    dialog_id = await write(app, 1)
    edited = await add_message(app, dialog_id, 1, "a zebra")
    removed = await add_message(app, dialog_id, 1, "another zebra")
    async with database_of(app).transaction() as session:
        await session.execute(
            update(Message).where(Message.id == edited).values(content="a giraffe")
        )
        await session.execute(delete(Message).where(Message.id == removed))
    assert await found(gql, "zebra") == []
    assert await found(gql, "giraffe") == ["a giraffe"]
    if backend == "sqlite":  # FTS5 compares its index with the rows it indexes
        async with database_of(app).transaction() as session:
            await session.execute(
                text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")
            )


async def test_dialog_list_search_matches_message_content(gql: GraphQLClient, app: Any) -> None:
    await write(app, 1, "Мои кошки спят", title="Pets")
    await write(app, 1, "nothing to see", title="Zebra notes")
    await write(app, 1, "zebras everywhere", title="Safari")
    await write(app, 2, "zebras of someone else", title="Other")
    titles = (await gql(DIALOGS, {"search": "zebra"})).ok()["dialogs"]["edges"]
    assert sorted(e["node"]["title"] for e in titles) == ["Safari", "Zebra notes"]
    titles = (await gql(DIALOGS, {"search": "кошка"})).ok()["dialogs"]["edges"]
    assert [e["node"]["title"] for e in titles] == ["Pets"]


@pytest.mark.parametrize("query", ["", "   ", "?!", "***", "_", "x" * (MAX_QUERY_LENGTH + 1)])
async def test_a_query_without_words_or_too_long_is_refused(gql: GraphQLClient, query: str) -> None:
    result = await search(gql, query)
    assert result.codes == ["VALIDATION_FAILED"]
    assert result.errors[0]["extensions"]["field"] == "query"


HOSTILE = [
    '"',
    '"zebra',
    "zebra*",
    "NEAR(zebra",
    "NEAR(zebra kept, 2)",
    "zebra OR kept",
    "-zebra",
    "zebra AND NOT kept",
    "content:zebra",
    "^zebra",
    "zebra:*",
    "zebra & !kept | (",
    "zebra' OR '1'='1",
    "zebra\\",
    "{zebra}",
    "zebra" + " x" * 90,
    "зебра\u0301 \u200b zebra",
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_are_just_words(gql: GraphQLClient, app: Any, query: str) -> None:
    await write(app, 1, "zebra kept here")
    result = await search(gql, query)
    assert result.status == 200
    assert result.codes in ([], ["VALIDATION_FAILED"]), result.errors
    if not result.errors:
        edges = result.ok()["searchMessages"]["edges"]
        assert [e["node"]["message"]["content"] for e in edges] in ([], ["zebra kept here"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=MAX_QUERY_LENGTH))
def test_any_text_makes_a_valid_fts5_expression(text: str) -> None:
    terms = search_terms(text)
    if terms is None or not terms.words:
        return
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute(
            "CREATE VIRTUAL TABLE t USING fts5(content, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        connection.execute("INSERT INTO t (content) VALUES ('zebra кошки')")
        connection.execute("SELECT rowid FROM t WHERE t MATCH ?", (terms.fts5_query,)).fetchall()
    finally:
        connection.close()


async def test_statement_count_does_not_grow_with_the_page(gql: GraphQLClient, app: Any) -> None:
    query = """query($q: String!) { searchMessages(query: $q, first: 50) { edges { node {
        snippet message { id } dialog { title model { name } agent { name } lastMessage { id } }
    } } } }"""
    for owner, count in ((5, 2), (50, 20)):
        for i in range(count):
            dialog_id = await create_dialog(app, owner, title=f"d{i}", agent_id=1 + i % 3)
            await add_message(app, dialog_id, owner, f"zebra number {i}")
    with count_statements(app) as small:
        two = (await gql(query, {"q": "zebra"}, user=5)).ok()["searchMessages"]["edges"]
    with count_statements(app) as large:
        twenty = (await gql(query, {"q": "zebra"}, user=50)).ok()["searchMessages"]["edges"]
    assert (len(two), len(twenty)) == (2, 20)
    assert len(small) == len(large), (small, large)
