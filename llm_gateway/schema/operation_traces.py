"""Strawberry's OpenTelemetry extension, without what a client wrote in its attributes.

Imported only with tracing on (``build_schema``): it imports OpenTelemetry. The operation
span leaves out the query text (a client may inline a message's content in it) and each
resolver span keeps only the arguments ``graphql_arguments`` lets through.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from opentelemetry.trace import SpanKind
from strawberry.extensions import LifecycleStep
from strawberry.extensions.tracing import OpenTelemetryExtension

from llm_gateway.observability.tracing import graphql_arguments


class OperationTraces(OpenTelemetryExtension):
    """A server span per operation (``GraphQL Query: Name``), a child span per resolver."""

    def __init__(self, *, tracer_provider: Any, execution_context: Any = None) -> None:
        super().__init__(
            execution_context=execution_context,
            arg_filter=graphql_arguments,
            tracer_provider=tracer_provider,
        )

    def on_operation(self) -> Generator[None, None, None]:
        name = self.execution_context.operation_name
        span = self._tracer.start_span(
            f"GraphQL Query: {name}" if name else "GraphQL Query", kind=SpanKind.SERVER
        )
        span.set_attribute("component", "graphql")
        self._span_holder[LifecycleStep.OPERATION] = span
        try:
            yield
        finally:
            # Known after parsing when the client named no operation.
            if not name and self.execution_context.operation_name:
                span.update_name(f"GraphQL Query: {self.execution_context.operation_name}")
            span.end()
