"""current catalog

The seed of 0002 named 2024 models the providers have retired: the pinned SDKs' model
lists (openai 3.57: ``ChatModel`` and its deprecation notes; anthropic 2.14: ``ModelParam``
and ``DEPRECATED_MODELS``) no longer carry the Claude 3 ids, and mark gpt-4-turbo and
gpt-3.5-turbo as shut down on 2026-10-23. The previous deployment's public names keep
working, pointed at current models with those models' prices and context windows, and
keep their 4,096-token output cap (what their clients got before); current models are
added under their own ids. Only rows still as 0002 seeded them are moved (a model staff
re-pointed is left alone), and a name staff already use is not seeded again.

Prices are the providers' list prices per 1,000 tokens (USD): OpenAI's GPT-5.4 family
reads its cache at 0.1x and charges no write premium; Anthropic reads at 0.1x and writes
(5-minute cache) at 1.25x. OpenAI's list prices hold for prompts under 270K tokens, so
its models' windows stop there. Balance weights stay 1 per token, as seeded before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:10:00.000000
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

models = sa.table(
    'models',
    sa.column('id', sa.Integer),
    sa.column('name', sa.String),
    sa.column('display_name', sa.String),
    sa.column('provider', sa.String),
    sa.column('upstream_model', sa.String),
    sa.column('context_window', sa.Integer),
    sa.column('max_output_tokens', sa.Integer),
    sa.column('prompt_price_per_1k', sa.Numeric(12, 6)),
    sa.column('completion_price_per_1k', sa.Numeric(12, 6)),
    sa.column('cache_read_price_per_1k', sa.Numeric(12, 6)),
    sa.column('cache_write_price_per_1k', sa.Numeric(12, 6)),
    sa.column('prompt_weight', sa.Numeric(10, 4)),
    sa.column('completion_weight', sa.Numeric(10, 4)),
    sa.column('cache_read_weight', sa.Numeric(10, 4)),
    sa.column('cache_write_weight', sa.Numeric(10, 4)),
    sa.column('enabled', sa.Boolean),
    sa.column('is_default', sa.Boolean),
)
dialogs = sa.table('dialogs', sa.column('model_id', sa.Integer))

# upstream id -> (provider, context window, max output, $/1k prompt, completion, cache read,
# cache write, cache read weight, cache write weight)
CURRENT: dict[str, tuple[Any, ...]] = {
    'gpt-5.5': ('openai', 270_000, 128_000, '0.005', '0.03', '0.0005', '0.005', '0.1', '1'),
    'gpt-5.4': ('openai', 270_000, 128_000, '0.0025', '0.015', '0.00025', '0.0025', '0.1', '1'),
    'gpt-5.4-mini': (
        'openai', 270_000, 128_000, '0.00075', '0.0045', '0.000075', '0.00075', '0.1', '1'
    ),
    'claude-opus-4-8': (
        'anthropic', 1_000_000, 128_000, '0.005', '0.025', '0.0005', '0.00625', '0.1', '1.25'
    ),
    'claude-sonnet-4-6': (
        'anthropic', 1_000_000, 64_000, '0.003', '0.015', '0.0003', '0.00375', '0.1', '1.25'
    ),
    'claude-haiku-4-5': (
        'anthropic', 200_000, 64_000, '0.001', '0.005', '0.0001', '0.00125', '0.1', '1.25'
    ),
}
DISPLAY = {
    'gpt-5.5': 'GPT-5.5',
    'gpt-5.4': 'GPT-5.4',
    'gpt-5.4-mini': 'GPT-5.4 mini',
    'claude-opus-4-8': 'Claude Opus 4.8',
    'claude-sonnet-4-6': 'Claude Sonnet 4.6',
    'claude-haiku-4-5': 'Claude Haiku 4.5',
}
# public name -> (0002's upstream id, 0002's window, 0002's $/1k prompt, completion,
# 0002's display name, the current upstream id it now names)
LEGACY = {
    'gpt-4-turbo': ('gpt-4-turbo', 128_000, '0.01', '0.03', 'GPT-4 Turbo', 'gpt-5.4'),
    'gpt-3.5-turbo': ('gpt-3.5-turbo', 16_385, '0.0005', '0.0015', 'GPT-3.5 Turbo',
                      'gpt-5.4-mini'),
    'claude-3-opus': ('claude-3-opus-20240229', 200_000, '0.015', '0.075', 'Claude 3 Opus',
                      'claude-opus-4-8'),
    'claude-3-sonnet': ('claude-3-sonnet-20240229', 200_000, '0.003', '0.015',
                        'Claude 3 Sonnet', 'claude-sonnet-4-6'),
}
LEGACY_OUTPUT_CAP = 4_096
OLD_RATIOS = {'openai': ('0.5', '1'), 'anthropic': ('0.1', '1.25')}  # as 0006 set them


def _prices(upstream: str) -> dict[str, Any]:
    _, window, _, prompt, completion, read, write, read_w, write_w = CURRENT[upstream]
    return {
        'context_window': window,
        'prompt_price_per_1k': Decimal(prompt),
        'completion_price_per_1k': Decimal(completion),
        'cache_read_price_per_1k': Decimal(read),
        'cache_write_price_per_1k': Decimal(write),
        'cache_read_weight': Decimal(read_w),
        'cache_write_weight': Decimal(write_w),
    }


def upgrade() -> None:
    connection = op.get_bind()
    for name, (old_upstream, _, _, _, old_display, upstream) in LEGACY.items():
        connection.execute(
            models.update()
            .where(models.c.name == name, models.c.upstream_model == old_upstream)
            .values(
                upstream_model=upstream,
                display_name=f'{old_display} (now {DISPLAY[upstream]})',
                **_prices(upstream),
            )
        )
    taken = set(connection.scalars(sa.select(models.c.name)))
    rows = []
    for upstream, spec in CURRENT.items():
        if upstream in taken:
            continue
        rows.append({
            'name': upstream,
            'display_name': DISPLAY[upstream],
            'provider': spec[0],
            'upstream_model': upstream,
            'max_output_tokens': spec[2],
            'prompt_weight': Decimal(1),
            'completion_weight': Decimal(1),
            'enabled': True,
            'is_default': False,
            **_prices(upstream),
        })
    if rows:
        op.bulk_insert(models, rows)


def downgrade() -> None:
    connection = op.get_bind()
    used = sa.select(dialogs.c.model_id).where(dialogs.c.model_id == models.c.id).exists()
    for upstream, spec in CURRENT.items():
        connection.execute(
            models.delete().where(
                models.c.name == upstream,
                models.c.upstream_model == upstream,
                models.c.max_output_tokens == spec[2],
                ~used,
            )
        )
    for name, (old_upstream, window, prompt, completion, display, upstream) in LEGACY.items():
        read, write = OLD_RATIOS[CURRENT[upstream][0]]
        connection.execute(
            models.update()
            .where(models.c.name == name, models.c.upstream_model == upstream)
            .values(
                upstream_model=old_upstream,
                display_name=display,
                context_window=window,
                prompt_price_per_1k=Decimal(prompt),
                completion_price_per_1k=Decimal(completion),
                cache_read_price_per_1k=Decimal(prompt) * Decimal(read),
                cache_write_price_per_1k=Decimal(prompt) * Decimal(write),
                cache_read_weight=Decimal(read),
                cache_write_weight=Decimal(write),
            )
        )
