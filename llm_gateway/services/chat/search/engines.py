"""The full-text statements of each backend (the objects they read: db.search_index).

PostgreSQL matches ``messages.search_vector`` against ``plainto_tsquery('russian', text)``
through its GIN index, ranks with ``ts_rank`` and cuts snippets with ``ts_headline``.
SQLite matches the FTS5 table ``messages_fts`` with the expression of ``SearchTerms`` and
cuts snippets with ``snippet()``. Its rank is computed from the message alone (how often the
query's words occur in it, against its length: BM25's term-frequency part with a fixed
length scale), not with ``bm25()``, whose corpus statistics move whenever anyone writes a
message, which would move a page's cursor. A rank never changes while its message doesn't.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Dialog, Message
from llm_gateway.db.search_index import FTS_TABLE, SEARCH_VECTOR, TEXT_SEARCH_CONFIG
from llm_gateway.services.chat.search.snippets import LESS_THAN, START, STOP, WORDS_AROUND
from llm_gateway.services.chat.search.terms import SearchTerms, search_terms

Hits = Select[uuid.UUID, float]
Rows = Select[Message, Dialog, str]

LENGTH_SCALE = 500.0
"""SQLite's rank: ``n / (n + 1 + characters / LENGTH_SCALE)`` for ``n`` occurrences."""

HEADLINE_OPTIONS = (
    f"StartSel={START}, StopSel={STOP}, MaxWords={WORDS_AROUND}, MinWords={WORDS_AROUND // 2}"
)


class SearchEngine(Protocol):
    async def prepare(self, session: AsyncSession) -> None:
        """Called once in the session before the statements below."""

    def hits(self, terms: SearchTerms, where: Sequence[ColumnElement[bool]]) -> Hits:
        """``(message id, rank)`` of every message that matches and passes ``where``
        (on ``Message`` and its ``Dialog``). ``terms`` has words, here and below."""

    def rows(self, terms: SearchTerms, ids: Sequence[uuid.UUID]) -> Rows:
        """The messages ``ids``, their dialogs and marked excerpts."""

    def dialog_ids(self, terms: SearchTerms) -> Select[uuid.UUID]:
        """The dialogs (ids, of anyone) with a matching message."""


class PostgresSearch:
    """A generated tsvector and its GIN index."""

    def __init__(self) -> None:
        self.vector: ColumnElement[Any] = sa.literal_column(f"messages.{SEARCH_VECTOR}")
        self.config: ColumnElement[Any] = sa.literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig")

    async def prepare(self, session: AsyncSession) -> None:
        """Plan each search for its own user and words, not once for all (until the
        transaction ends). A generic plan of a prepared statement cannot see how common a
        word is: it takes the GIN index for any word and, for a common one, walks hundreds
        of thousands of entries to keep the user's few (50 ms at 1M messages, against 2 ms
        down the user's dialogs)."""
        await session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))

    def _query(self, terms: SearchTerms) -> ColumnElement[Any]:
        return func.plainto_tsquery(self.config, terms.text)

    def _matches(self, terms: SearchTerms) -> ColumnElement[bool]:
        return self.vector.op("@@", return_type=sa.Boolean)(self._query(terms))

    def hits(self, terms: SearchTerms, where: Sequence[ColumnElement[bool]]) -> Hits:
        rank = sa.cast(func.ts_rank(self.vector, self._query(terms)), sa.Double)
        return (
            select(Message.id.label("id"), rank.label("rank"))
            .join(Dialog, Dialog.id == Message.dialog_id)
            .where(self._matches(terms), *where)
        )

    def rows(self, terms: SearchTerms, ids: Sequence[uuid.UUID]) -> Rows:
        # ts_headline drops what looks like an HTML tag: it reads "<" as another character.
        content = func.replace(Message.content, "<", LESS_THAN)
        excerpt = func.ts_headline(
            self.config, content, self._query(terms), HEADLINE_OPTIONS, type_=sa.Text
        )
        return (
            select(Message, Dialog, excerpt)
            .join(Dialog, Dialog.id == Message.dialog_id)
            .where(Message.id.in_(ids))
        )

    def dialog_ids(self, terms: SearchTerms) -> Select[uuid.UUID]:
        return select(Message.dialog_id).where(self._matches(terms))


class SqliteSearch:
    """An FTS5 table over the messages' rowids."""

    def __init__(self) -> None:
        self.table = sa.table(FTS_TABLE, sa.column("rowid"))
        self.name: ColumnElement[Any] = sa.literal_column(FTS_TABLE)

    async def prepare(self, session: AsyncSession) -> None:
        return None

    def _matched(self, *columns: Any) -> Select[Any]:
        return (
            select(*columns)
            .select_from(self.table)
            .join(Message, sa.literal_column("messages.rowid") == self.table.c.rowid)
        )

    def _match(self, expression: str) -> ColumnElement[bool]:
        return self.name.op("MATCH", return_type=sa.Boolean)(expression)

    def hits(self, terms: SearchTerms, where: Sequence[ColumnElement[bool]]) -> Hits:
        marked = (
            self._matched(
                Message.id.label("id"),
                func.length(Message.content).label("size"),
                func.highlight(self.name, 0, START, STOP, type_=sa.Text).label("marked"),
            )
            .join(Dialog, Dialog.id == Message.dialog_id)
            .where(self._match(terms.fts5_query), *where)
            # Materialized, so highlight() runs where FTS5 allows it: beside its MATCH.
            .cte("matched")
            .prefix_with("MATERIALIZED")
        )
        found = func.length(marked.c.marked) - func.length(func.replace(marked.c.marked, START, ""))
        rank = found * 1.0 / (found + 1 + marked.c.size / LENGTH_SCALE)
        return select(marked.c.id, sa.cast(rank, sa.Double).label("rank"))

    def rows(self, terms: SearchTerms, ids: Sequence[uuid.UUID]) -> Rows:
        excerpt = func.snippet(self.name, 0, START, STOP, "", WORDS_AROUND, type_=sa.Text)
        return (
            self._matched(Message, Dialog, excerpt)
            .join(Dialog, Dialog.id == Message.dialog_id)
            .where(self._match(terms.fts5_query), Message.id.in_(ids))
        )

    def dialog_ids(self, terms: SearchTerms) -> Select[uuid.UUID]:
        return self._matched(Message.dialog_id).where(self._match(terms.fts5_query))


def engine_of(session: AsyncSession) -> SearchEngine:
    if session.get_bind().dialect.name == "postgresql":
        return PostgresSearch()
    return SqliteSearch()


async def dialogs_mentioning(
    session: AsyncSession, owner_id: int, text: str
) -> Select[uuid.UUID] | None:
    """Ids of the owner's dialogs with a message that matches ``text`` (the dialog list's
    ``search``); None when ``text`` has no word to look for but stop words."""
    terms = search_terms(text)
    if terms is None or not terms.words:
        return None
    engine = engine_of(session)
    await engine.prepare(session)
    return engine.dialog_ids(terms).where(Message.user_id == owner_id)
