"""Searching one user's messages: ranked hits with snippets, paged by (rank, id)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Row, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.models import Dialog, Message
from llm_gateway.errors import ValidationFailed
from llm_gateway.services.chat.dialogs import get_dialog
from llm_gateway.services.chat.search import snippets
from llm_gateway.services.chat.search.engines import SearchEngine, engine_of
from llm_gateway.services.chat.search.terms import SearchTerms, parse_query
from llm_gateway.services.plumbing.pagination import (
    Page,
    check_page_size,
    decode_cursor,
    encode_cursor,
)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A matching message, its dialog, an excerpt (escaped HTML with ``<mark>``) and its
    rank: higher is more relevant; comparable within one search, not across searches."""

    message: Message
    dialog: Dialog
    snippet: str
    rank: float


async def search_messages(
    session: AsyncSession,
    owner_id: int,
    *,
    query: str,
    first: int | None,
    after: str | None,
    dialog_id: uuid.UUID | None,
    max_page_size: int,
) -> Page[SearchHit]:
    """The owner's messages in live dialogs (or in ``dialog_id``) that contain every word of
    ``query`` in some form, most relevant first, ties by id.

    The order is a keyset (rank, id) and a rank depends on its message alone, so pages
    neither repeat nor skip a hit while other messages come and go. A query of stop words
    only finds nothing; one without any word is VALIDATION_FAILED (as is a dialog that is
    not the owner's: NOT_FOUND).
    """
    size = check_page_size(first, max_page_size)
    terms = parse_query(query)
    position = _decode(after) if after is not None else None
    where = [Message.user_id == owner_id, Dialog.user_id == owner_id, Dialog.deleted_at.is_(None)]
    if dialog_id is not None:
        await get_dialog(session, owner_id, dialog_id)
        where.append(Message.dialog_id == dialog_id)
    if not terms.words:  # stop words only: nothing to look for
        return Page(items=[], has_next_page=False, has_previous_page=after is not None)
    engine = engine_of(session)
    await engine.prepare(session)
    hits = engine.hits(terms, where).subquery("hits")
    page = select(hits.c.id, hits.c.rank)
    if position is not None:
        rank, last_id = position
        page = page.where(or_(hits.c.rank < rank, and_(hits.c.rank == rank, hits.c.id > last_id)))
    found = (
        await session.execute(page.order_by(hits.c.rank.desc(), hits.c.id).limit(size + 1))
    ).all()
    items = await _hits(session, engine, terms, found[:size]) if found else []
    return Page(items=items, has_next_page=len(found) > size, has_previous_page=after is not None)


async def _hits(
    session: AsyncSession,
    engine: SearchEngine,
    terms: SearchTerms,
    found: Sequence[Row[uuid.UUID, float]],
) -> list[tuple[str, SearchHit]]:
    """The page's hits, with their messages, dialogs and snippets, in ``found``'s order."""
    statement = engine.rows(terms, [message_id for message_id, _ in found])
    rows = {row[0].id: row for row in await session.execute(statement)}
    items = []
    for message_id, rank in found:
        if message_id not in rows:  # its dialog was deleted between the two statements
            continue
        message, dialog, excerpt = rows[message_id]
        hit = SearchHit(message, dialog, snippets.render(excerpt, message.content), rank)
        items.append((encode_cursor(repr(rank), str(message_id)), hit))
    return items


def _decode(cursor: str) -> tuple[float, uuid.UUID]:
    raw_rank, raw_id = decode_cursor(cursor, 2)
    try:
        rank = float(raw_rank)
        message_id = uuid.UUID(raw_id)
    except ValueError:
        raise ValidationFailed("Invalid cursor.", field="after") from None
    if not math.isfinite(rank):
        raise ValidationFailed("Invalid cursor.", field="after")
    return rank, message_id
