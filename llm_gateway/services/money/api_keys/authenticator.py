"""Who a gateway API key acts for: one indexed read, cached briefly, revoked everywhere at once.

``ApiKeyAuthenticator.authenticate`` hashes the key and reads its row by that hash (the
unique index), then keeps what it found, or that nothing was found, for
``API_KEY_CACHE_SECONDS``. Expiry is checked on every call, cached or not. A revocation
drops the key from this instance's cache when it commits and from every other instance's
on ``ApiKeyRevoked`` (``watch_revocations``); after the broker was down, when such notices
may have been missed, the whole cache is dropped. The time of each use is kept in memory
and written in batches (``last_used``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from llm_gateway.db.base import utcnow
from llm_gateway.db.engine import Database
from llm_gateway.db.models import ApiKey
from llm_gateway.errors import ServiceUnavailable, Unauthenticated
from llm_gateway.services.money.api_keys.last_used import FLUSH_SECONDS, LastUsed
from llm_gateway.services.money.api_keys.records import find_by_hash, hash_key, is_api_key
from llm_gateway.services.plumbing.broker import Broker
from llm_gateway.services.plumbing.broker_events import API_KEYS_CHANNEL, ApiKeyRevoked

logger = logging.getLogger("llm_gateway.api_keys")

MAX_CACHED_KEYS = 10_000
"""Beyond this, the entries cached first are dropped (random keys cannot fill memory)."""
MAX_KEY_LENGTH = 256
"""Ours are 49 characters; a longer bearer token is not one of them (and is not hashed)."""
RETRY_SECONDS = 1.0

UNKNOWN_KEY = "Invalid API key."
REVOKED_KEY = "This API key has been revoked."
EXPIRED_KEY = "This API key has expired."


@dataclass(frozen=True, slots=True)
class ApiKeyPrincipal:
    """A valid key: it acts as ``user_id`` (their balance and limits), only with ``models``
    when set, and within its own ``daily_token_limit`` on top of the user's limits."""

    key_id: uuid.UUID
    user_id: int
    name: str
    models: tuple[str, ...] | None
    daily_token_limit: int | None
    expires_at: dt.datetime | None

    def allows(self, model: str) -> bool:
        """Whether this key may call ``model`` (a public model name)."""
        return self.models is None or model in self.models

    @staticmethod
    def of(row: ApiKey) -> ApiKeyPrincipal:
        return ApiKeyPrincipal(
            key_id=row.id,
            user_id=row.user_id,
            name=row.name,
            models=tuple(row.models) if row.models is not None else None,
            daily_token_limit=row.daily_token_limit,
            expires_at=row.expires_at,
        )


@dataclass(frozen=True, slots=True)
class _Entry:
    """What one read found: a key (maybe revoked), or None when no key has that hash."""

    principal: ApiKeyPrincipal | None
    revoked: bool
    until: float


class ApiKeyAuthenticator:
    """Built once per process (the app's lifespan); ``run`` is its background work."""

    def __init__(
        self,
        db: Database,
        broker: Broker,
        *,
        cache_seconds: float,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._broker = broker
        self._cache_seconds = cache_seconds
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._hash_of: dict[uuid.UUID, str] = {}
        self._loading: dict[str, asyncio.Task[_Entry]] = {}
        self._generation = 0  # moves on every eviction: a read begun before it is not kept
        self.last_used = LastUsed(db)
        self.watching = False
        """True while revocation notices are being received."""

    async def authenticate(self, raw: str) -> ApiKeyPrincipal:
        """The key's principal; ``Unauthenticated`` for an unknown, revoked or expired key."""
        if not is_api_key(raw) or len(raw) > MAX_KEY_LENGTH:
            raise Unauthenticated(UNKNOWN_KEY)
        digest = hash_key(raw)
        entry = self._cached(digest)
        if entry is None:
            entry = await self._load(digest)
        principal = entry.principal
        if principal is None:
            raise Unauthenticated(UNKNOWN_KEY)
        if entry.revoked:
            raise Unauthenticated(REVOKED_KEY)
        now = self._clock()
        if principal.expires_at is not None and principal.expires_at <= now:
            raise Unauthenticated(EXPIRED_KEY)
        self.last_used.record(principal.key_id, now)
        return principal

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop what is cached about a key (it was revoked)."""
        self._generation += 1
        digest = self._hash_of.pop(key_id, None)
        if digest is not None:
            self._cache.pop(digest, None)

    def clear(self) -> None:
        """Drop everything cached (revocation notices may have been missed)."""
        self._generation += 1
        self._cache.clear()
        self._hash_of.clear()

    @property
    def cached(self) -> int:
        return len(self._cache)

    def _cached(self, digest: str) -> _Entry | None:
        entry = self._cache.get(digest)
        if entry is None:
            return None
        if entry.until <= time.monotonic():
            self._drop(digest, entry)
            return None
        return entry

    def _drop(self, digest: str, entry: _Entry) -> None:
        self._cache.pop(digest, None)
        if entry.principal is not None:
            self._hash_of.pop(entry.principal.key_id, None)

    async def _load(self, digest: str) -> _Entry:
        """One read per hash at a time: concurrent requests with one key share it."""
        task = self._loading.get(digest)
        if task is None:
            task = asyncio.create_task(self._read(digest), name="api-key-lookup")
            self._loading[digest] = task
            task.add_done_callback(lambda _: self._loading.pop(digest, None))
        return await asyncio.shield(task)

    async def _read(self, digest: str) -> _Entry:
        generation = self._generation
        async with self._db.read() as session:
            row = await find_by_hash(session, digest)
        entry = _Entry(
            principal=ApiKeyPrincipal.of(row) if row is not None else None,
            revoked=row is not None and row.revoked_at is not None,
            until=time.monotonic() + self._cache_seconds,
        )
        if self._cache_seconds > 0 and generation == self._generation:
            self._store(digest, entry)
        return entry

    def _store(self, digest: str, entry: _Entry) -> None:
        self._cache[digest] = entry
        self._cache.move_to_end(digest)
        if entry.principal is not None:
            self._hash_of[entry.principal.key_id] = digest
        while len(self._cache) > MAX_CACHED_KEYS:
            _oldest, dropped = self._cache.popitem(last=False)
            if dropped.principal is not None:
                self._hash_of.pop(dropped.principal.key_id, None)

    # -- background work: started and stopped by the app's lifespan ---------------------------

    async def run(self) -> None:
        """Follow revocations and write last-use times until cancelled; then call
        ``last_used.flush()`` once more, so the last few seconds are not lost."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.watch_revocations(), name="api-key-revocations")
            tasks.create_task(self.last_used.run(self._flush_seconds), name="api-key-last-used")

    async def watch_revocations(self) -> None:
        """Forget each key revoked on any instance (cancel to stop)."""
        missed = False
        while True:
            try:
                async with self._broker.subscribe(API_KEYS_CHANNEL) as events:
                    self.watching = True
                    if missed:
                        self.clear()
                        missed = False
                    async for wire in events:
                        notice = ApiKeyRevoked.from_wire(wire)
                        if notice is not None:
                            self.forget(notice.key_id)
            except ServiceUnavailable:
                pass  # the broker logs its own state
            except Exception:
                logger.exception("API key revocations unavailable; retrying")
            finally:
                self.watching = False
            missed = True
            await asyncio.sleep(RETRY_SECONDS)
