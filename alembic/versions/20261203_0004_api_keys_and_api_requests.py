"""api keys and api requests

Gateway API keys (only the SHA-256 of a key is stored), one row per /v1 request, and the
key and request a hold or a ledger row belongs to (an API key's daily limit reads its
usage rows of the day).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 06:07:32.038100
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('last_four', sa.String(length=4), nullable=False),
    sa.Column('models', sa.JSON(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('daily_token_limit', sa.BigInteger(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint('daily_token_limit IS NULL OR daily_token_limit >= 0', name=op.f('ck_api_keys_daily_limit_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index('ix_api_keys_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('api_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('api_key_id', sa.Uuid(), nullable=True),
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stream', sa.Boolean(), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=True),
    sa.Column('completion_tokens', sa.Integer(), nullable=True),
    sa.Column('charged_tokens', sa.BigInteger(), nullable=True),
    sa.Column('cost_usd', sa.Numeric(precision=16, scale=8), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('ttft_ms', sa.Integer(), nullable=True),
    sa.Column('total_ms', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('request_body', sa.JSON(), nullable=True),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint("status IN ('complete', 'streaming', 'failed', 'cancelled', 'interrupted')", name=op.f('ck_api_requests_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_requests')),
    sa.UniqueConstraint('user_id', 'idempotency_key', name='uq_api_requests_user_idempotency_key')
    )
    with op.batch_alter_table('api_requests', schema=None) as batch_op:
        batch_op.create_index('ix_api_requests_created', ['created_at'], unique=False)
        batch_op.create_index('ix_api_requests_key_created', ['api_key_id', 'created_at'], unique=False)
        batch_op.create_index('ix_api_requests_user_created', ['user_id', 'created_at'], unique=False)

    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_request_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('api_key_id', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_reservations_api_request_id'), ['api_request_id'], unique=False)

    with op.batch_alter_table('token_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_request_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('api_key_id', sa.Uuid(), nullable=True))
        batch_op.create_index('ix_token_transactions_api_key_created', ['api_key_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('token_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_token_transactions_api_key_created')
        batch_op.drop_column('api_key_id')
        batch_op.drop_column('api_request_id')

    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reservations_api_request_id'))
        batch_op.drop_column('api_key_id')
        batch_op.drop_column('api_request_id')

    with op.batch_alter_table('api_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_api_requests_user_created')
        batch_op.drop_index('ix_api_requests_key_created')
        batch_op.drop_index('ix_api_requests_created')

    op.drop_table('api_requests')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_api_keys_user_created')

    op.drop_table('api_keys')
