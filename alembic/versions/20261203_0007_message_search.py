"""message search

Full-text search over message content (llm_gateway.db.search_index says what each object
is for; Alembic's autogenerate skips them).

PostgreSQL: a stored generated tsvector under the built-in ``russian`` configuration, which
stems Cyrillic words with the Russian Snowball stemmer and ASCII words with the English one,
and a GIN index over it. Adding the column rewrites ``messages`` under an exclusive lock
(about a minute per few million rows): run it in a quiet hour.

SQLite: an FTS5 table over ``messages.content`` (external content, by rowid; the porter
stemmer over unicode61, so English word forms match; Russian ones are matched by the
service's stemmed prefix queries), filled once and kept in sync by triggers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_TRIGGERS = {
    'messages_fts_insert': """
        AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
        END""",
    'messages_fts_delete': """
        AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.rowid, old.content);
        END""",
    'messages_fts_update': """
        AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.rowid, old.content);
            INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
        END""",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.add_column(
            'messages',
            sa.Column(
                'search_vector',
                postgresql.TSVECTOR(),
                sa.Computed("to_tsvector('russian'::regconfig, content)", persisted=True),
                nullable=True,
            ),
        )
        op.create_index(
            'ix_messages_search_vector', 'messages', ['search_vector'], postgresql_using='gin'
        )
        return
    op.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5("
        "content, content='messages', content_rowid='rowid', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    )
    op.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
    for name, body in FTS_TRIGGERS.items():
        op.execute(f'CREATE TRIGGER {name} {body}')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_messages_search_vector', table_name='messages')
        op.drop_column('messages', 'search_vector')
        return
    for name in FTS_TRIGGERS:
        op.execute(f'DROP TRIGGER {name}')
    op.execute('DROP TABLE messages_fts')
