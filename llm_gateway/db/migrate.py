"""Run Alembic from code: the CLI's ``migrate``, the server's startup check and the tests."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from llm_gateway.settings import ConfigError, DbPooler

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: URL | str | None = None, pooler: DbPooler = "none") -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["pooler"] = pooler
    if url is not None:
        config.attributes["url"] = (
            url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        )
    return config


def upgrade(url: URL | str, revision: str = "head", *, pooler: DbPooler = "none") -> None:
    """Bring the database at ``url`` to ``revision`` (call outside a running event loop)."""
    command.upgrade(alembic_config(url, pooler), revision)


def downgrade(url: URL | str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def assert_at_head(engine: AsyncEngine) -> None:
    """Refuse to serve a database the code does not match; says how to fix it."""
    async with engine.connect() as connection:
        current = await connection.run_sync(current_revision)
    head = head_revision()
    if current != head:
        raise ConfigError(
            f"the database is at revision {current or 'none (empty)'}, the code needs {head}: "
            "run `llm-gateway migrate` (or `llm-gateway serve --migrate`) first"
        )
