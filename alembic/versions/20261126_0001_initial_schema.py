"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 14:06:18.683885
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('audit_logs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor_id', sa.BigInteger(), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('resource_type', sa.String(length=50), nullable=False),
    sa.Column('resource_id', sa.String(length=255), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('ip_address', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=500), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_logs'))
    )
    with op.batch_alter_table('audit_logs', schema=None) as batch_op:
        batch_op.create_index('ix_audit_logs_action', ['action'], unique=False)
        batch_op.create_index('ix_audit_logs_actor_created', ['actor_id', 'created_at'], unique=False)
        batch_op.create_index('ix_audit_logs_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_logs_resource', ['resource_type', 'resource_id'], unique=False)

    op.create_table('balances',
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('reserved', sa.BigInteger(), nullable=False),
    sa.Column('daily_limit', sa.BigInteger(), nullable=True),
    sa.Column('monthly_limit', sa.BigInteger(), nullable=True),
    sa.Column('lifetime_used', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_balances_balance_not_negative')),
    sa.CheckConstraint('reserved >= 0 AND reserved <= balance', name=op.f('ck_balances_reserved_covered')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_balances'))
    )
    op.create_table('models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('upstream_model', sa.String(length=200), nullable=False),
    sa.Column('context_window', sa.Integer(), nullable=False),
    sa.Column('max_output_tokens', sa.Integer(), nullable=False),
    sa.Column('prompt_price_per_1k', sa.Numeric(precision=12, scale=6), nullable=False),
    sa.Column('completion_price_per_1k', sa.Numeric(precision=12, scale=6), nullable=False),
    sa.Column('prompt_weight', sa.Numeric(precision=10, scale=4), nullable=False),
    sa.Column('completion_weight', sa.Numeric(precision=10, scale=4), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('fallback_model_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint("provider IN ('openai', 'anthropic', 'gigachat', 'mock')", name=op.f('ck_models_provider')),
    sa.CheckConstraint('context_window > 0', name=op.f('ck_models_context_window_positive')),
    sa.CheckConstraint('max_output_tokens > 0 AND max_output_tokens <= context_window', name=op.f('ck_models_max_output_tokens_fits')),
    sa.CheckConstraint('prompt_price_per_1k >= 0 AND completion_price_per_1k >= 0', name=op.f('ck_models_prices')),
    sa.CheckConstraint('prompt_weight >= 0 AND completion_weight >= 0', name=op.f('ck_models_weights')),
    sa.ForeignKeyConstraint(['fallback_model_id'], ['models.id'], name=op.f('fk_models_fallback_model_id_models'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models')),
    sa.UniqueConstraint('name', name=op.f('uq_models_name'))
    )
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.create_index('uq_models_single_default', ['is_default'], unique=True, postgresql_where=sa.text('is_default'), sqlite_where=sa.text('is_default'))

    op.create_table('reservations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.Uuid(), nullable=True),
    sa.Column('model_name', sa.String(length=100), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('instance_id', sa.String(length=64), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint("state IN ('held', 'settled', 'released')", name=op.f('ck_reservations_state')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_reservations_amount_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations'))
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservations_message_id'), ['message_id'], unique=False)
        batch_op.create_index('ix_reservations_state_expires', ['state', 'expires_at'], unique=False)
        batch_op.create_index('ix_reservations_user_state', ['user_id', 'state'], unique=False)

    op.create_table('system_config',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('is_secret', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('updated_by', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_system_config'))
    )
    op.create_table('token_transactions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('reservation_id', sa.Uuid(), nullable=True),
    sa.Column('message_id', sa.Uuid(), nullable=True),
    sa.Column('dialog_id', sa.Uuid(), nullable=True),
    sa.Column('model_name', sa.String(length=100), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=True),
    sa.Column('completion_tokens', sa.Integer(), nullable=True),
    sa.Column('uncharged_tokens', sa.BigInteger(), nullable=True),
    sa.Column('cost_usd', sa.Numeric(precision=16, scale=8), nullable=True),
    sa.Column('actor_id', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint("kind IN ('grant', 'topup', 'usage', 'refund', 'adjustment')", name=op.f('ck_token_transactions_kind')),
    sa.CheckConstraint('balance_after >= 0', name=op.f('ck_token_transactions_balance_after_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_token_transactions')),
    sa.UniqueConstraint('reservation_id', name=op.f('uq_token_transactions_reservation_id')),
    sa.UniqueConstraint('user_id', 'idempotency_key', name='uq_token_transactions_user_idempotency_key')
    )
    with op.batch_alter_table('token_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_token_transactions_created', ['created_at'], unique=False)
        batch_op.create_index('ix_token_transactions_user_created', ['user_id', 'created_at', 'id'], unique=False)

    op.create_table('agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('system_prompt', sa.Text(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('temperature', sa.Double(), nullable=True),
    sa.Column('top_p', sa.Double(), nullable=True),
    sa.Column('max_tokens', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_agents_model_id_models'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('name', name=op.f('uq_agents_name'))
    )
    op.create_table('dialogs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=True),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('system_prompt', sa.Text(), nullable=True),
    sa.Column('temperature', sa.Double(), nullable=True),
    sa.Column('top_p', sa.Double(), nullable=True),
    sa.Column('max_tokens', sa.Integer(), nullable=True),
    sa.Column('stop', sa.JSON(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_dialogs_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_dialogs_model_id_models'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dialogs'))
    )
    with op.batch_alter_table('dialogs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dialogs_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dialogs_model_id'), ['model_id'], unique=False)
        batch_op.create_index('ix_dialogs_owner_activity', ['user_id', 'updated_at', 'id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('dialog_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('model_name', sa.String(length=100), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=True),
    sa.Column('completion_tokens', sa.Integer(), nullable=True),
    sa.Column('charged_tokens', sa.BigInteger(), nullable=True),
    sa.Column('cost_usd', sa.Numeric(precision=16, scale=8), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('ttft_ms', sa.Integer(), nullable=True),
    sa.Column('total_ms', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('parent_id', sa.Uuid(), nullable=True),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint("role IN ('system', 'user', 'assistant')", name=op.f('ck_messages_role')),
    sa.CheckConstraint("status IN ('complete', 'streaming', 'failed', 'cancelled', 'interrupted')", name=op.f('ck_messages_status')),
    sa.ForeignKeyConstraint(['dialog_id'], ['dialogs.id'], name=op.f('fk_messages_dialog_id_dialogs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['messages.id'], name=op.f('fk_messages_parent_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('user_id', 'idempotency_key', name='uq_messages_user_idempotency_key')
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_dialog_created', ['dialog_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index('ix_messages_status', ['status'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_status')
        batch_op.drop_index(batch_op.f('ix_messages_parent_id'))
        batch_op.drop_index('ix_messages_dialog_created')

    op.drop_table('messages')
    with op.batch_alter_table('dialogs', schema=None) as batch_op:
        batch_op.drop_index('ix_dialogs_owner_activity')
        batch_op.drop_index(batch_op.f('ix_dialogs_model_id'))
        batch_op.drop_index(batch_op.f('ix_dialogs_agent_id'))

    op.drop_table('dialogs')
    op.drop_table('agents')
    with op.batch_alter_table('token_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_token_transactions_user_created')
        batch_op.drop_index('ix_token_transactions_created')

    op.drop_table('token_transactions')
    op.drop_table('system_config')
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_reservations_user_state')
        batch_op.drop_index('ix_reservations_state_expires')
        batch_op.drop_index(batch_op.f('ix_reservations_message_id'))

    op.drop_table('reservations')
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_index('uq_models_single_default', postgresql_where=sa.text('is_default'), sqlite_where=sa.text('is_default'))

    op.drop_table('models')
    op.drop_table('balances')
    with op.batch_alter_table('audit_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_logs_resource')
        batch_op.drop_index('ix_audit_logs_created')
        batch_op.drop_index('ix_audit_logs_actor_created')
        batch_op.drop_index('ix_audit_logs_action')

    op.drop_table('audit_logs')

