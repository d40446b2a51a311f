"""Full-text search results."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from llm_gateway.schema.chat.types import DialogType, MessageType

if TYPE_CHECKING:
    from llm_gateway.services.chat.search.hits import SearchHit


@strawberry.type
class MessageSearchHit:
    """A message that matches a search, with the dialog it belongs to."""

    message: MessageType
    dialog: DialogType
    snippet: str = strawberry.field(
        description=(
            "An excerpt around the matches as an HTML fragment: the text is escaped and "
            "each match is wrapped in <mark>…</mark>; … marks where the message goes on."
        )
    )
    rank: float = strawberry.field(
        description="Relevance: higher is better; comparable within one search only."
    )

    @staticmethod
    def from_hit(hit: SearchHit) -> MessageSearchHit:
        return MessageSearchHit(
            message=MessageType.from_row(hit.message),
            dialog=DialogType.from_row(hit.dialog),
            snippet=hit.snippet,
            rank=hit.rank,
        )
