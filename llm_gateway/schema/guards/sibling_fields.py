"""Sibling fields settle before an error bubbles: no resolver is dropped unawaited.

graphql-core 3.3 runs a selection's async fields (and a list's items) together with
``gather_with_cancel``: when one non-null field fails, the others are cancelled. A task
cancelled before its first step never runs its body, and the coroutines that body held
— the nested fields' resolvers, not started yet — are dropped: Python warns
"coroutine … was never awaited" for each (stderr in production, an error in the tests),
and a resolver cancelled mid-query leaves its database session to be cleaned up on a
cancellation path. ``{ model(name: "") { name } agents { model { name } } }`` did it:
the NOT_FOUND cancelled ``agents`` while its items' fields were still queued.

The fix waits for every sibling to settle and then raises the first failure, in the
order of the selection (graphql-js 16 cancels nothing either). A document's fields are
bounded by the operation limits, so the wait is short; which error bubbles no longer
depends on timing. Cancellation from outside (a closed websocket) is left as asyncio does
it. graphql-core looks the helper up as a module global, so ``install`` replaces it there,
and refuses to start if a graphql-core upgrade no longer has it
(tests/hardening/test_sibling_fields.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import graphql.execution.executor as graphql_executor


async def gather_settled(*awaitables: Awaitable[Any]) -> list[Any]:
    """The awaitables' results, once all have settled; the first failure, in order, if any."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def install() -> None:
    """Make graphql-core's executor gather sibling fields with ``gather_settled``."""
    if not hasattr(graphql_executor, "gather_with_cancel"):
        raise RuntimeError("graphql-core no longer gathers fields with gather_with_cancel")
    graphql_executor.gather_with_cancel = gather_settled


__all__ = ["gather_settled", "install"]
