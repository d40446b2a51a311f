"""Runtime settings (staff): read masked, set, delete; every instance follows at once."""

from __future__ import annotations

from llm_gateway.schema.context import Info
from llm_gateway.schema.inputs import DeleteConfigInput, SetConfigInput
from llm_gateway.schema.staff.runtime_settings import ConfigEntry
from llm_gateway.services.staff import runtime_settings as config


async def system_config(info: Info) -> list[ConfigEntry]:
    services = info.context.services
    async with services.db.read() as session:
        views = await config.list_config(session, services.cipher)
    return [ConfigEntry.from_view(view) for view in views]


async def set_config(info: Info, input: SetConfigInput) -> ConfigEntry:
    """Set a value (secrets encrypted at rest, never shown again in clear); audited."""
    ctx = info.context
    services = ctx.services
    async with services.db.transaction() as session:
        view = await config.set_config(
            session,
            ctx.actor(),
            services.cipher,
            input.key,
            input.value,
            secret=input.secret,
            description=input.description,
            broker=services.broker,
            refresh=services.refresh_config,  # this instance at once; the others on notice
        )
    return ConfigEntry.from_view(view)


async def delete_config(info: Info, input: DeleteConfigInput) -> ConfigEntry:
    """Remove a value: the environment's applies again; audited."""
    ctx = info.context
    services = ctx.services
    async with services.db.transaction() as session:
        view = await config.delete_config(
            session,
            ctx.actor(),
            services.cipher,
            input.key,
            broker=services.broker,
            refresh=services.refresh_config,  # this instance at once; the others on notice
        )
    return ConfigEntry.from_view(view)
