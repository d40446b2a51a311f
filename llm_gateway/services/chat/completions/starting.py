"""Starting a completion: the idempotency check, the request's record and its hold, in one
unit of work that the caller commits before anything is sent upstream."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.db.base import utcnow
from llm_gateway.db.models import ApiRequest
from llm_gateway.enums import MessageStatus
from llm_gateway.errors import Conflict, GatewayError, InsufficientBalance, QuotaExceeded
from llm_gateway.services.chat.completions.planning import (
    ApiCaller,
    CompletionPlan,
    CompletionRequest,
    plan_completion,
)
from llm_gateway.services.chat.planning import GenerationJob
from llm_gateway.services.money import holds
from llm_gateway.services.money.balances import MoneyPolicy

IDEMPOTENCY_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """The client's ``Idempotency-Key`` and a hash of the body it came with."""

    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class Started:
    """A completion ready to run (``job``), refused (``refusal``) or replayed (``replay``)."""

    request_id: uuid.UUID
    plan: CompletionPlan | None = None
    job: GenerationJob | None = None
    refusal: GatewayError | None = None
    replay: dict[str, Any] | None = None


async def start_completion(
    session: AsyncSession,
    caller: ApiCaller,
    request: CompletionRequest,
    *,
    idempotency: Idempotency | None,
    policy: MoneyPolicy,
    instance_id: str,
    body: dict[str, Any] | None = None,
) -> Started:
    """Plan, record and hold, or return what an earlier request with the same key gave.

    Over budget the request is recorded as failed and ``refusal`` says why; the caller
    commits and then answers with the refusal (nothing was held, nobody was called).
    """
    now = utcnow()
    if idempotency is not None:
        earlier = await _earlier(session, caller.user_id, idempotency, now)
        if earlier is not None:
            return earlier
    plan = await plan_completion(session, caller, request)
    row = ApiRequest(
        id=uuid.uuid4(),
        user_id=caller.user_id,
        api_key_id=caller.key_id,
        model_name=plan.model.name,
        status=MessageStatus.STREAMING,
        stream=request.stream,
        prompt_tokens=plan.prompt_tokens,
        idempotency_key=idempotency.key if idempotency else None,
        request_hash=idempotency.request_hash if idempotency else None,
        request_body=body,
        created_at=now,
    )
    if idempotency is None:
        session.add(row)
    else:
        try:
            # A concurrent request with the same key waits on the unique index and loses.
            async with session.begin_nested():
                session.add(row)
                await session.flush()
        except IntegrityError:
            earlier = await _earlier(session, caller.user_id, idempotency, now)
            if earlier is None:
                raise
            return earlier
    try:
        hold = await holds.reserve(
            session,
            caller.user_id,
            plan.targets[0].pricing,
            plan.prompt_tokens,
            plan.output_cap,
            policy,
            api_request_id=row.id,
            api_key=caller.budget,
            instance_id=instance_id,
            now=now,
        )
    except (InsufficientBalance, QuotaExceeded) as refusal:
        row.status = MessageStatus.FAILED
        row.error_code = refusal.code
        row.error_message = refusal.message
        row.idempotency_key = None  # nothing happened: a repeat may try again
        row.completed_at = now
        await session.flush()
        return Started(row.id, plan=plan, refusal=refusal)
    targets = plan.targets
    if hold.output_cap != plan.output_cap:
        targets = tuple(
            t.with_max_tokens(min(hold.output_cap, t.request.max_tokens)) for t in targets
        )
    await session.flush()
    job = GenerationJob(
        message_id=row.id,
        dialog_id=None,
        user_id=caller.user_id,
        reservation_id=hold.reservation_id,
        prompt_tokens=plan.prompt_tokens,
        targets=targets,
    )
    return Started(row.id, plan=plan, job=job)


async def _earlier(
    session: AsyncSession, user_id: int, idempotency: Idempotency, now: dt.datetime
) -> Started | None:
    """The answer to a repeated key: its stored response, or a CONFLICT; None when the
    key is free (never used, or last used over a day ago, which frees it now)."""
    row = await session.scalar(
        select(ApiRequest).where(
            ApiRequest.user_id == user_id, ApiRequest.idempotency_key == idempotency.key
        )
    )
    if row is None:
        return None
    if row.created_at < now - IDEMPOTENCY_WINDOW:
        await session.execute(
            update(ApiRequest)
            .where(ApiRequest.id == row.id)
            .values(idempotency_key=None)
            .execution_options(synchronize_session=False)
        )
        await session.flush()
        return None
    if row.request_hash != idempotency.request_hash:
        raise Conflict(
            "This Idempotency-Key was used with a different request body.",
            field="Idempotency-Key",
            reason="idempotency_key_reused",
        )
    if row.status == MessageStatus.STREAMING or row.response is None:
        raise Conflict(
            "A request with this Idempotency-Key is still in progress; retry shortly.",
            field="Idempotency-Key",
            reason="idempotency_key_in_progress",
        )
    return Started(row.id, replay=row.response)
