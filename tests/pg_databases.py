"""Fresh PostgreSQL databases for tests, made ahead and dropped behind on a thread.

``CREATE DATABASE … TEMPLATE`` takes 0.1-0.3 s and ``DROP DATABASE`` another 0.05-0.1 s;
done in the test's own setup and teardown they were a third of the suite's time. The
suite mostly waits (on sockets, on subprocesses), so a thread of its own keeps a few
databases ready from the template and drops used ones while tests run. A test still gets
a database nothing else has touched, and every database is dropped by the session's end.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import deque

import asyncpg

AHEAD = 2
"""Databases kept ready; one test takes one, and the thread makes the next meanwhile."""
DROPS_BEHIND = 8
"""Used databases allowed to wait for their drop before making a new one waits for them."""
TAKE_TIMEOUT_SECONDS = 120.0


class DatabaseSupply:
    """Databases copied from ``template``, handed out by ``take`` and dropped after
    ``give_back``; ``close`` drops whatever is left and stops the thread."""

    def __init__(self, admin_dsn: str, template: str) -> None:
        self._admin_dsn = admin_dsn
        self._template = template
        self._ready: deque[str] = deque()
        self._used: deque[str] = deque()
        self._failure: BaseException | None = None
        self._closing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="pg-databases", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """The name of a fresh database at the template's state, for one test alone."""
        with self._changed:
            ready = self._changed.wait_for(
                lambda: self._ready or self._failure is not None, TAKE_TIMEOUT_SECONDS
            )
            if self._failure is not None:
                raise self._failure
            if not ready:
                raise TimeoutError(f"no database was made in {TAKE_TIMEOUT_SECONDS} s")
            name = self._ready.popleft()
            self._changed.notify_all()
            return name

    def give_back(self, name: str) -> None:
        """``name``'s test is over: drop it (with any connection left on it) soon."""
        with self._changed:
            self._used.append(name)
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()

    def _next(self) -> tuple[str, str] | None:
        """What to do next ("create" or "drop", and the database), or None to stop."""
        with self._changed:
            while True:
                if self._closing:
                    leftover = self._used or self._ready
                    return ("drop", leftover.popleft()) if leftover else None
                making = len(self._ready) < AHEAD and self._failure is None
                if making and len(self._used) < DROPS_BEHIND:
                    return "create", f"llmgw_t_{uuid.uuid4().hex[:16]}"
                if self._used:
                    return "drop", self._used.popleft()
                self._changed.wait()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        connection: asyncpg.Connection | None = None
        try:
            connection = loop.run_until_complete(asyncpg.connect(self._admin_dsn))
            while (step := self._next()) is not None:
                action, name = step
                try:
                    if action == "create":
                        statement = f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"'
                    else:
                        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                    loop.run_until_complete(connection.execute(statement))
                except (OSError, asyncpg.PostgresError) as exc:
                    if action == "create":  # the next take reports it
                        self._fail(exc)
                    continue  # a drop that failed leaves a test database behind, no more
                if action == "create":
                    with self._changed:
                        self._ready.append(name)
                        self._changed.notify_all()
        except (OSError, asyncpg.PostgresError) as exc:
            self._fail(exc)
        finally:
            if connection is not None:
                loop.run_until_complete(connection.close())
            loop.close()

    def _fail(self, error: BaseException) -> None:
        with self._changed:
            self._failure = error
            self._changed.notify_all()
