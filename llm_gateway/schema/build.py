"""The root types and the schema. Only this module imports the resolvers."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from llm_gateway.resolvers.catalog import admin as catalog_admin_resolvers
from llm_gateway.resolvers.catalog import listing as catalog_resolvers
from llm_gateway.resolvers.chat import dialogs as dialog_resolvers
from llm_gateway.resolvers.chat import messages as chat_resolvers
from llm_gateway.resolvers.chat import search as search_resolvers
from llm_gateway.resolvers.chat import transfer as transfer_resolvers
from llm_gateway.resolvers.money import api_keys as api_key_resolvers
from llm_gateway.resolvers.money import balances as money_resolvers
from llm_gateway.resolvers.money import me as me_resolvers
from llm_gateway.resolvers.staff import reports as report_resolvers
from llm_gateway.resolvers.staff import runtime_settings as config_resolvers
from llm_gateway.schema.catalog.types import (
    AgentType,
    DeletedAgent,
    DeletedModel,
    ModelType,
    ReloadModelsPayload,
)
from llm_gateway.schema.chat.events import MessageEvent, SendMessagePayload
from llm_gateway.schema.chat.search import MessageSearchHit
from llm_gateway.schema.chat.transfer import ImportDialogsResult
from llm_gateway.schema.chat.types import DeletedDialog, DialogType, MessageType
from llm_gateway.schema.extensions import (
    FreshLoaders,
    ShapeErrors,
    is_unexpected,
    log_unexpected,
)
from llm_gateway.schema.guards import sibling_fields as execution
from llm_gateway.schema.guards.document_cache import CachedDocuments
from llm_gateway.schema.guards.introspection import IntrospectionGate
from llm_gateway.schema.guards.one_operation import OneOperation
from llm_gateway.schema.guards.operation_limits import Limits, OperationLimits
from llm_gateway.schema.money.accounts import Me, UserAccount
from llm_gateway.schema.money.api_keys import ApiKeyType, CreateApiKeyPayload
from llm_gateway.schema.money.types import BalanceChangePayload, BalanceEvent, TransactionType
from llm_gateway.schema.operation_metrics import OperationMetrics
from llm_gateway.schema.pagination import Connection
from llm_gateway.schema.permissions import IsAuthenticated, IsStaff
from llm_gateway.schema.scalars import SCALAR_MAP
from llm_gateway.schema.staff.reports import AuditLogEntry, StaffDialogType, UsageStats
from llm_gateway.schema.staff.runtime_settings import ConfigEntry
from llm_gateway.settings import Settings

logger = logging.getLogger("llm_gateway.graphql")

AUTHENTICATED: list[type[BasePermission]] = [IsAuthenticated]
STAFF: list[type[BasePermission]] = [IsStaff]


@strawberry.type
class Query:
    me: Me = strawberry.field(resolver=me_resolvers.me, permission_classes=AUTHENTICATED)
    models: list[ModelType] = strawberry.field(
        resolver=catalog_resolvers.models, permission_classes=AUTHENTICATED
    )
    model: ModelType = strawberry.field(
        resolver=catalog_resolvers.model, permission_classes=AUTHENTICATED
    )
    agents: list[AgentType] = strawberry.field(
        resolver=catalog_resolvers.agents, permission_classes=AUTHENTICATED
    )
    dialogs: Connection[DialogType] = strawberry.field(
        resolver=dialog_resolvers.dialog_list, permission_classes=AUTHENTICATED
    )
    dialog: DialogType = strawberry.field(
        resolver=dialog_resolvers.dialog, permission_classes=AUTHENTICATED
    )
    messages: Connection[MessageType] = strawberry.field(
        resolver=dialog_resolvers.message_list, permission_classes=AUTHENTICATED
    )
    search_messages: Connection[MessageSearchHit] = strawberry.field(
        resolver=search_resolvers.search_messages, permission_classes=AUTHENTICATED
    )
    transactions: Connection[TransactionType] = strawberry.field(
        resolver=money_resolvers.transactions, permission_classes=AUTHENTICATED
    )
    export_dialogs: JSON = strawberry.field(
        resolver=transfer_resolvers.export_dialogs, permission_classes=AUTHENTICATED
    )
    api_keys: list[ApiKeyType] = strawberry.field(
        resolver=api_key_resolvers.api_key_list, permission_classes=AUTHENTICATED
    )

    # Staff.
    users: Connection[UserAccount] = strawberry.field(
        resolver=money_resolvers.users, permission_classes=STAFF
    )
    user_balance: UserAccount = strawberry.field(
        resolver=money_resolvers.user_balance, permission_classes=STAFF
    )
    user_transactions: Connection[TransactionType] = strawberry.field(
        resolver=money_resolvers.user_transactions, permission_classes=STAFF
    )
    system_config: list[ConfigEntry] = strawberry.field(
        resolver=config_resolvers.system_config, permission_classes=STAFF
    )
    all_dialogs: Connection[StaffDialogType] = strawberry.field(
        resolver=report_resolvers.all_dialogs, permission_classes=STAFF
    )
    audit_logs: Connection[AuditLogEntry] = strawberry.field(
        resolver=report_resolvers.audit_logs, permission_classes=STAFF
    )
    usage_stats: UsageStats = strawberry.field(
        resolver=report_resolvers.usage_stats_report, permission_classes=STAFF
    )
    all_api_keys: Connection[ApiKeyType] = strawberry.field(
        resolver=api_key_resolvers.all_api_keys, permission_classes=STAFF
    )


@strawberry.type
class Mutation:
    create_dialog: DialogType = strawberry.mutation(
        resolver=dialog_resolvers.create_dialog, permission_classes=AUTHENTICATED
    )
    update_dialog: DialogType = strawberry.mutation(
        resolver=dialog_resolvers.update_dialog, permission_classes=AUTHENTICATED
    )
    delete_dialog: DeletedDialog = strawberry.mutation(
        resolver=dialog_resolvers.delete_dialog, permission_classes=AUTHENTICATED
    )
    send_message: SendMessagePayload = strawberry.mutation(
        resolver=chat_resolvers.send_message, permission_classes=AUTHENTICATED
    )
    cancel_generation: MessageType = strawberry.mutation(
        resolver=chat_resolvers.cancel_generation, permission_classes=AUTHENTICATED
    )
    regenerate: SendMessagePayload = strawberry.mutation(
        resolver=chat_resolvers.regenerate, permission_classes=AUTHENTICATED
    )
    edit_message: SendMessagePayload = strawberry.mutation(
        resolver=chat_resolvers.edit_message, permission_classes=AUTHENTICATED
    )
    switch_branch: DialogType = strawberry.mutation(
        resolver=dialog_resolvers.switch_branch, permission_classes=AUTHENTICATED
    )
    import_dialogs: ImportDialogsResult = strawberry.mutation(
        resolver=transfer_resolvers.import_dialogs, permission_classes=AUTHENTICATED
    )
    create_api_key: CreateApiKeyPayload = strawberry.mutation(
        resolver=api_key_resolvers.create_api_key, permission_classes=AUTHENTICATED
    )
    revoke_api_key: ApiKeyType = strawberry.mutation(
        resolver=api_key_resolvers.revoke_api_key, permission_classes=AUTHENTICATED
    )

    # Staff.
    top_up_balance: BalanceChangePayload = strawberry.mutation(
        resolver=money_resolvers.top_up_balance, permission_classes=STAFF
    )
    adjust_balance: BalanceChangePayload = strawberry.mutation(
        resolver=money_resolvers.adjust_balance, permission_classes=STAFF
    )
    set_balance_limits: UserAccount = strawberry.mutation(
        resolver=money_resolvers.set_balance_limits, permission_classes=STAFF
    )
    set_config: ConfigEntry = strawberry.mutation(
        resolver=config_resolvers.set_config, permission_classes=STAFF
    )
    delete_config: ConfigEntry = strawberry.mutation(
        resolver=config_resolvers.delete_config, permission_classes=STAFF
    )
    create_model: ModelType = strawberry.mutation(
        resolver=catalog_admin_resolvers.create_model, permission_classes=STAFF
    )
    update_model: ModelType = strawberry.mutation(
        resolver=catalog_admin_resolvers.update_model, permission_classes=STAFF
    )
    delete_model: DeletedModel = strawberry.mutation(
        resolver=catalog_admin_resolvers.delete_model, permission_classes=STAFF
    )
    reload_models: ReloadModelsPayload = strawberry.mutation(
        resolver=catalog_admin_resolvers.reload_models, permission_classes=STAFF
    )
    create_agent: AgentType = strawberry.mutation(
        resolver=catalog_admin_resolvers.create_agent, permission_classes=STAFF
    )
    update_agent: AgentType = strawberry.mutation(
        resolver=catalog_admin_resolvers.update_agent, permission_classes=STAFF
    )
    delete_agent: DeletedAgent = strawberry.mutation(
        resolver=catalog_admin_resolvers.delete_agent, permission_classes=STAFF
    )


@strawberry.type
class Subscription:
    message_events: AsyncGenerator[MessageEvent, None] = strawberry.subscription(
        resolver=chat_resolvers.message_events, permission_classes=AUTHENTICATED
    )
    balance_changed: AsyncGenerator[BalanceEvent, None] = strawberry.subscription(
        resolver=money_resolvers.balance_changed, permission_classes=AUTHENTICATED
    )


class GatewaySchema(strawberry.Schema):
    """Logs only what is unexpected, with its traceback; expected errors are the client's."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context = execution_context.context if execution_context is not None else None
        for error in errors:
            if is_unexpected(error):
                log_unexpected(error, context)


def build_schema(settings: Settings, tracer_provider: Any = None) -> GatewaySchema:
    """The schema with the operation limits of ``settings``; with a ``tracer_provider``
    (tracing on), a span per operation and resolver (``operation_traces``).

    ``OperationLimits`` (depth, aliases, cost, NUL characters) runs right after parsing,
    before graphql-core's rules, which a refused document never reaches. Sibling fields
    settle before an error bubbles (``llm_gateway.schema.guards.sibling_fields``).
    """
    execution.install()
    limits = Limits.of(settings)
    extensions: list[Any] = [
        OperationMetrics,  # outermost: it sees every operation's end, however it ends
        lambda: OperationLimits(limits),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        CachedDocuments,
        ShapeErrors,
        FreshLoaders,
        lambda: IntrospectionGate(mode=settings.introspection),
        OneOperation,
    ]
    if tracer_provider is not None:  # imports OpenTelemetry: only with tracing on
        from llm_gateway.schema.operation_traces import OperationTraces

        extensions.insert(1, lambda: OperationTraces(tracer_provider=tracer_provider))
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=not settings.debug, scalar_map=SCALAR_MAP
        ),
    )


schema = build_schema(Settings(_env_file=None))  # type: ignore[call-arg]
