"""prompt caching

Every record of a generation's tokens (messages, ledger rows, API requests) counts the
input read from and written to the provider's prompt cache and the output spent
reasoning; models get balance weights and USD prices for cache reads and writes. Every
existing model is priced from its provider's published ratios to its prompt weight and
price: Anthropic reads at 0.1x and writes at 1.25x, OpenAI reads at 0.5x and writes at 1x
(it charges no write premium), GigaChat and the mock at 1x both. The usage statistics'
covering index on assistant messages carries the new columns too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:30:00.000000
"""

from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USAGE_TABLES = ('messages', 'token_transactions', 'api_requests')
TOKEN_COLUMNS = ('cache_read_tokens', 'cache_write_tokens', 'reasoning_tokens')
OLD_INCLUDE = ['user_id', 'model_name', 'status', 'prompt_tokens', 'completion_tokens',
               'charged_tokens', 'cost_usd', 'total_ms']
NEW_INCLUDE = [*OLD_INCLUDE, *TOKEN_COLUMNS]
ASSISTANT_ROWS = sa.text("role = 'assistant'")

# provider -> (cache read, cache write) as multiples of the prompt weight and price
RATIOS = {
    'anthropic': (Decimal('0.1'), Decimal('1.25')),
    'openai': (Decimal('0.5'), Decimal('1')),
}
WEIGHT = Decimal('0.0001')  # NUMERIC(10, 4)
PRICE = Decimal('0.000001')  # NUMERIC(12, 6)

models = sa.table(
    'models',
    sa.column('id', sa.Integer),
    sa.column('provider', sa.String),
    sa.column('prompt_price_per_1k', sa.Numeric(12, 6)),
    sa.column('prompt_weight', sa.Numeric(10, 4)),
    sa.column('cache_read_price_per_1k', sa.Numeric(12, 6)),
    sa.column('cache_write_price_per_1k', sa.Numeric(12, 6)),
    sa.column('cache_read_weight', sa.Numeric(10, 4)),
    sa.column('cache_write_weight', sa.Numeric(10, 4)),
)


def _times(value: object, ratio: Decimal, places: Decimal) -> Decimal:
    """``value * ratio`` at the column's scale, rounded up: never cheaper than published."""
    return (Decimal(str(value)) * ratio).quantize(places, rounding=ROUND_CEILING)


def _assistant_index(batch_op: Any, include: list[str]) -> None:
    batch_op.create_index(
        'ix_messages_assistant_created', ['created_at'], unique=False,
        postgresql_where=ASSISTANT_ROWS, postgresql_include=include,
        sqlite_where=ASSISTANT_ROWS,
    )


def upgrade() -> None:
    for table in USAGE_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in TOKEN_COLUMNS:
                batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_assistant_created', postgresql_where=ASSISTANT_ROWS,
                            postgresql_include=OLD_INCLUDE, sqlite_where=ASSISTANT_ROWS)
        _assistant_index(batch_op, NEW_INCLUDE)

    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cache_read_price_per_1k', sa.Numeric(precision=12, scale=6), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('cache_write_price_per_1k', sa.Numeric(precision=12, scale=6), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('cache_read_weight', sa.Numeric(precision=10, scale=4), server_default=sa.text('1'), nullable=False))
        batch_op.add_column(sa.Column('cache_write_weight', sa.Numeric(precision=10, scale=4), server_default=sa.text('1'), nullable=False))
        batch_op.create_check_constraint(op.f('ck_models_cache_prices'), 'cache_read_price_per_1k >= 0 AND cache_write_price_per_1k >= 0')
        batch_op.create_check_constraint(op.f('ck_models_cache_weights'), 'cache_read_weight >= 0 AND cache_write_weight >= 0')

    connection = op.get_bind()
    rows = connection.execute(
        sa.select(models.c.id, models.c.provider, models.c.prompt_price_per_1k, models.c.prompt_weight)
    ).all()
    for row in rows:
        read, write = RATIOS.get(row.provider, (Decimal(1), Decimal(1)))
        connection.execute(
            models.update()
            .where(models.c.id == row.id)
            .values(
                cache_read_price_per_1k=_times(row.prompt_price_per_1k, read, PRICE),
                cache_write_price_per_1k=_times(row.prompt_price_per_1k, write, PRICE),
                cache_read_weight=_times(row.prompt_weight, read, WEIGHT),
                cache_write_weight=_times(row.prompt_weight, write, WEIGHT),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_models_cache_weights'), type_='check')
        batch_op.drop_constraint(op.f('ck_models_cache_prices'), type_='check')
        batch_op.drop_column('cache_write_weight')
        batch_op.drop_column('cache_read_weight')
        batch_op.drop_column('cache_write_price_per_1k')
        batch_op.drop_column('cache_read_price_per_1k')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_assistant_created', postgresql_where=ASSISTANT_ROWS,
                            postgresql_include=NEW_INCLUDE, sqlite_where=ASSISTANT_ROWS)
        _assistant_index(batch_op, OLD_INCLUDE)
    for table in reversed(USAGE_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(TOKEN_COLUMNS):
                batch_op.drop_column(column)
