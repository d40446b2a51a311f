"""staff report indexes

Indexes for the staff reads: every dialog by creation time (allDialogs), every user's
ledger by time, whole or of one kind (userTransactions without a user), and assistant
messages by time for usageStats; on PostgreSQL that one is partial and covering (the
statistics read it alone), on SQLite partial.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:01:50.986029
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('dialogs', schema=None) as batch_op:
        batch_op.create_index('ix_dialogs_created_id', ['created_at', 'id'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_assistant_created', ['created_at'], unique=False, postgresql_where=sa.text("role = 'assistant'"), postgresql_include=['user_id', 'model_name', 'status', 'prompt_tokens', 'completion_tokens', 'charged_tokens', 'cost_usd', 'total_ms'], sqlite_where=sa.text("role = 'assistant'"))

    with op.batch_alter_table('token_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_token_transactions_created_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_token_transactions_kind_created', ['kind', 'created_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('token_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_token_transactions_kind_created')
        batch_op.drop_index('ix_token_transactions_created_id')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_assistant_created', postgresql_where=sa.text("role = 'assistant'"), postgresql_include=['user_id', 'model_name', 'status', 'prompt_tokens', 'completion_tokens', 'charged_tokens', 'cost_usd', 'total_ms'], sqlite_where=sa.text("role = 'assistant'"))

    with op.batch_alter_table('dialogs', schema=None) as batch_op:
        batch_op.drop_index('ix_dialogs_created_id')
