"""Full-text search over the caller's messages (staff: anyone's)."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from llm_gateway.errors import Forbidden
from llm_gateway.schema.chat.search import MessageSearchHit
from llm_gateway.schema.context import Info
from llm_gateway.schema.pagination import Connection
from llm_gateway.schema.scalars import SafeInt
from llm_gateway.services.chat.search import hits


async def search_messages(
    info: Info,
    query: Annotated[
        str,
        strawberry.argument(
            description="Words to find, all of them, in any form (English and Russian)."
        ),
    ],
    first: int | None = None,
    after: str | None = None,
    dialog_id: Annotated[
        uuid.UUID | None, strawberry.argument(description="Only in this dialog.")
    ] = None,
    user_id: Annotated[
        SafeInt | None, strawberry.argument(description="Whose messages (staff); default: yours.")
    ] = None,
) -> Connection[MessageSearchHit]:
    """Messages of live dialogs that contain every word of ``query``, most relevant first."""
    ctx = info.context
    principal = ctx.principal
    owner = principal.user_id if user_id is None else user_id
    if owner != principal.user_id and not principal.is_staff:
        raise Forbidden("Only staff may search another user's messages.")
    async with ctx.services.db.read() as session:
        page = await hits.search_messages(
            session,
            owner,
            query=query,
            first=first,
            after=after,
            dialog_id=dialog_id,
            max_page_size=ctx.services.settings.graphql_max_page_size,
        )
    return Connection.of(page, MessageSearchHit.from_hit)
