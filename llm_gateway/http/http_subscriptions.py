"""Subscriptions over plain HTTP: which transports the GraphQL view serves, and how an
HTTP subscription stream ends when the server stops (README: subscriptions over HTTP).

graphql-sse (distinct connections) and Apollo's multipart subscriptions are strawberry's
own transports; the view (``graphql_view``) turns them on beside the websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types.execution import SubscriptionExecutionResult

SUBSCRIPTION_PROTOCOLS = (
    GRAPHQL_TRANSPORT_WS_PROTOCOL,  # the websocket
    GRAPHQL_SSE_PROTOCOL,  # HTTP: Accept: text/event-stream
    MULTIPART_SUBSCRIPTION_PROTOCOL,  # HTTP: Accept: multipart/mixed;subscriptionSpec=1.0
)


async def until_stopping(
    results: SubscriptionExecutionResult, stopping: asyncio.Event
) -> AsyncGenerator[Any, None]:
    """The subscription's results until the server stops; then it ends (and the transport
    sends its completion) instead of being cut by the shutdown."""
    iterator = aiter(results)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        while True:
            step = asyncio.ensure_future(anext(iterator))
            await asyncio.wait((step, stop), return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                return
            try:
                yield step.result()
            except StopAsyncIteration:
                return
    finally:
        stop.cancel()
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
