"""Every table, imported here so ``Base.metadata`` is complete for Alembic."""

from llm_gateway.db.models.admin import AuditLog, SystemConfig
from llm_gateway.db.models.api import ApiKey, ApiRequest
from llm_gateway.db.models.catalog import Agent, Model
from llm_gateway.db.models.chat import Dialog, Message
from llm_gateway.db.models.money import Balance, Reservation, TokenTransaction

__all__ = [
    "Agent",
    "ApiKey",
    "ApiRequest",
    "AuditLog",
    "Balance",
    "Dialog",
    "Message",
    "Model",
    "Reservation",
    "SystemConfig",
    "TokenTransaction",
]
