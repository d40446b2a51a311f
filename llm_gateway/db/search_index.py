"""The full-text index over message content: database objects the ORM models do not map.

Migration 0007 creates them, one set per backend:

- PostgreSQL: ``messages.search_vector``, a stored generated ``tsvector`` of the content under
  the ``russian`` text search configuration (Russian Snowball stems for Cyrillic words,
  English Snowball stems for ASCII words, each language's stop words), and the GIN index
  ``ix_messages_search_vector`` over it.
- SQLite: ``messages_fts``, an FTS5 table with external content (``messages``, by rowid),
  kept in sync by the triggers ``messages_fts_insert``/``_update``/``_delete``. FTS5 keeps
  shadow tables named ``messages_fts_*``.

The search service reads them by these names; Alembic's autogenerate skips them
(``alembic/env.py``), so the drift check compares only what the models declare.
A later SQLite migration that recreates ``messages`` (a batch ``alter_table``) drops the
triggers with the table: it must create them again and ``rebuild`` the FTS5 table.
"""

from __future__ import annotations

from collections.abc import Mapping

TEXT_SEARCH_CONFIG = "russian"
SEARCH_VECTOR = "search_vector"
SEARCH_VECTOR_INDEX = "ix_messages_search_vector"
FTS_TABLE = "messages_fts"
FTS_TRIGGERS = ("messages_fts_insert", "messages_fts_update", "messages_fts_delete")
FTS_SHADOW_TABLES = frozenset(
    f"{FTS_TABLE}_{suffix}" for suffix in ("data", "idx", "docsize", "config")
)


def is_search_object(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
    """True for the search objects above, as Alembic's ``include_name`` hook names them."""
    if type_ == "table":
        return name == FTS_TABLE or name in FTS_SHADOW_TABLES
    if parent_names.get("table_name") != "messages":
        return False
    return (type_, name) in {("column", SEARCH_VECTOR), ("index", SEARCH_VECTOR_INDEX)}
