"""Gateway API keys as rows: issue, list and revoke them.

A key is ``sk-lg-`` and 43 URL-safe characters (256 random bits). It is shown once, in
the answer that creates it; the row keeps the key's SHA-256 (what a request is looked up
by), its first ten and last four characters (to recognise it in a list), never the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from functools import partial

from sqlalchemy import ColumnElement, Select, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from llm_gateway.bounds import MAX_SAFE_INTEGER
from llm_gateway.db.base import utcnow
from llm_gateway.db.engine import after_commit
from llm_gateway.db.models import ApiKey, Model
from llm_gateway.errors import Conflict, NotFound, ValidationFailed
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.broker_events import ApiKeyRevoked
from llm_gateway.services.plumbing.pagination import (
    Page,
    check_page_size,
    decode_time_cursor,
    encode_cursor,
    make_page,
)
from llm_gateway.services.staff import audit

KEY_PREFIX = "sk-lg-"
SECRET_BYTES = 32
"""256 bits of randomness after the prefix."""
SHOWN_PREFIX_LENGTH = 10
"""``sk-lg-`` and four characters of the secret: what lists show before the last four."""
MAX_NAME_LENGTH = 100
MAX_MODELS = 100
MAX_MODEL_NAME_LENGTH = 100
MAX_LIVE_KEYS = 100
"""Keys one user may hold at once (neither revoked nor expired)."""
MAX_LISTED_KEYS = 500
"""``list_api_keys`` returns at most this many, newest first (revoked ones included)."""

Forget = Callable[[uuid.UUID], None]
"""This instance's cache, told at once that a key was revoked (the authenticator's)."""


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def is_api_key(token: str) -> bool:
    """A bearer token that is meant as a gateway API key (rather than an access JWT)."""
    return token.startswith(KEY_PREFIX)


def hash_key(raw: str) -> str:
    """What is stored and looked up: the SHA-256 of the whole key, as hex."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


# -- checks ------------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ValidationFailed(
            f"name is required: 1 to {MAX_NAME_LENGTH} printable characters.", field="name"
        )
    return name


def _check_expiry(expires_at: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise ValidationFailed(
            "expiresAt needs a time zone, e.g. 2030-01-31T00:00:00Z.", field="expiresAt"
        )
    if expires_at <= now:
        raise ValidationFailed("expiresAt must be in the future.", field="expiresAt")
    return expires_at.astimezone(dt.UTC)


def _check_limit(limit: int | None) -> int | None:
    if limit is not None and not 0 <= limit <= MAX_SAFE_INTEGER:
        raise ValidationFailed(
            f"dailyTokenLimit must be 0 to {MAX_SAFE_INTEGER} (null: no limit of its own).",
            field="dailyTokenLimit",
        )
    return limit


async def _check_models(session: AsyncSession, models: Sequence[str] | None) -> list[str] | None:
    """Distinct names of existing models (enabled or not), in the order given."""
    if models is None:
        return None
    names = list(dict.fromkeys(models))
    if not names:
        raise ValidationFailed(
            "models must name at least one model; leave it out to allow every model.",
            field="models",
        )
    if len(names) > MAX_MODELS or any(len(name) > MAX_MODEL_NAME_LENGTH for name in names):
        raise ValidationFailed(f"models takes at most {MAX_MODELS} model names.", field="models")
    found = set((await session.scalars(select(Model.name).where(Model.name.in_(names)))).all())
    unknown = [name for name in names if name not in found]
    if unknown:
        raise ValidationFailed(
            f"Unknown model(s): {', '.join(unknown)}.", field="models", unknown=unknown
        )
    return names


def _live(now: dt.datetime) -> list[ColumnElement[bool]]:
    return [ApiKey.revoked_at.is_(None), or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)]


# -- changes -----------------------------------------------------------------------------------


async def create_api_key(
    session: AsyncSession,
    user_id: int,
    *,
    name: str,
    expires_at: dt.datetime | None = None,
    models: Sequence[str] | None = None,
    daily_token_limit: int | None = None,
) -> tuple[str, ApiKey]:
    """A new key of ``user_id``: the key itself (to show once) and its row.

    ``models`` restricts the key to those models (public names; None: every model);
    ``daily_token_limit`` caps what it spends per day on top of its user's limits.
    """
    now = utcnow()
    clean_name = _check_name(name)
    expiry = _check_expiry(expires_at, now)
    limit = _check_limit(daily_token_limit)
    allowed = await _check_models(session, models)
    live = await session.scalar(
        select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id, *_live(now))
    )
    if (live or 0) >= MAX_LIVE_KEYS:
        raise Conflict(
            f"You already have {MAX_LIVE_KEYS} active API keys; revoke one first.",
            limit=MAX_LIVE_KEYS,
        )
    raw = new_key()
    row = ApiKey(
        user_id=user_id,
        name=clean_name,
        key_hash=hash_key(raw),
        prefix=raw[:SHOWN_PREFIX_LENGTH],
        last_four=raw[-4:],
        models=allowed,
        expires_at=expiry,
        daily_token_limit=limit,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return raw, row


async def revoke_api_key(
    session: AsyncSession,
    key_id: uuid.UUID,
    *,
    user_id: int | None = None,
    actor: audit.Actor | None = None,
    broker: Broker | None = None,
    forget: Forget | None = None,
) -> ApiKey:
    """Revoke a key at once, on every instance; revoking it again changes nothing.

    ``user_id`` (the caller) may revoke their own keys; ``actor`` (staff) anyone's, audited
    as ``api_key.revoke``. Anyone else's key is NOT_FOUND, like one that does not exist.
    Once committed, this instance's cache forgets the key (``forget``) and every other
    instance's on ``ApiKeyRevoked``.
    """
    row = await session.scalar(select(ApiKey).where(ApiKey.id == key_id).with_for_update())
    own = row is not None and user_id is not None and row.user_id == user_id
    if row is None or not (own or actor is not None):
        raise NotFound("There is no such API key.")
    if row.revoked_at is not None:
        return row
    row.revoked_at = utcnow()
    row.revoked_by = user_id if own or actor is None else actor.user_id
    await session.flush()
    if not own and actor is not None:
        await audit.record(
            session,
            actor,
            "api_key.revoke",
            "api_key",
            str(row.id),
            before={"revokedAt": None},
            after={
                "userId": row.user_id,
                "name": row.name,
                "key": f"{row.prefix}…{row.last_four}",
                "revokedAt": row.revoked_at.isoformat(),
            },
        )
    if forget is not None:
        after_commit(session, partial(_forget, forget, row.id))
    if broker is not None:
        after_commit(session, partial(broker.send, ApiKeyRevoked(row.id)))
    return row


async def _forget(forget: Forget, key_id: uuid.UUID) -> None:
    forget(key_id)


# -- reads -------------------------------------------------------------------------------------


async def get_api_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey:
    """Any user's key by id (staff), or NOT_FOUND."""
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("There is no such API key.")
    return row


async def find_by_hash(session: AsyncSession, digest: str) -> ApiKey | None:
    """The key whose SHA-256 is ``digest``: one read of the unique index."""
    row: ApiKey | None = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    return row


async def list_api_keys(session: AsyncSession, user_id: int) -> list[ApiKey]:
    """A user's keys, newest first (at most ``MAX_LISTED_KEYS``), revoked ones included."""
    query = (
        select(ApiKey)
        .where(ApiKey.user_id == user_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        .limit(MAX_LISTED_KEYS)
    )
    return list((await session.scalars(query)).all())


async def all_api_keys(
    session: AsyncSession,
    *,
    user_id: int | None = None,
    first: int | None,
    after: str | None,
    max_page_size: int,
) -> Page[ApiKey]:
    """Every user's keys (or one user's), newest first, revoked ones included (staff)."""
    size = check_page_size(first, max_page_size)
    query: Select[ApiKey] = select(ApiKey)
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    if after is not None:
        at, raw_id = decode_time_cursor(after)
        try:
            last_id = uuid.UUID(raw_id)
        except ValueError:
            raise ValidationFailed("Invalid cursor.", field="after") from None
        query = query.where(tuple_(ApiKey.created_at, ApiKey.id) < (at, last_id))
    query = query.order_by(ApiKey.created_at.desc(), ApiKey.id.desc()).limit(size + 1)
    rows = (await session.scalars(query)).all()
    return make_page(
        rows,
        size,
        lambda row: encode_cursor(row.created_at.isoformat(), str(row.id)),
        after=after is not None,
    )
