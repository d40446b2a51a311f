"""A generation's trace span: started in the task of the request that asked for it, so it
belongs to that request's trace; a no-op with tracing off (``observability.tracing``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from llm_gateway.observability.tracing import GenerationRecord, GenerationSpans
from llm_gateway.services.chat.generation.outcomes import Outcome, usage_of
from llm_gateway.services.chat.generation.running_answer import Running


@contextlib.contextmanager
def traced(spans: GenerationSpans, running: Running) -> Iterator[GenerationRecord]:
    """A span around one generation, named for the model asked (the primary target)."""
    job = running.job
    target = running.target()
    conversation = str(job.dialog_id) if job.dialog_id is not None else None
    with spans.generation(
        target.model_name if target is not None else "unknown",
        target.provider if target is not None else "unknown",
        conversation,
    ) as record:
        yield record


def record_outcome(record: GenerationRecord, running: Running, outcome: Outcome) -> None:
    """The end as the span reports it: tokens counted as the settlement counts them, and
    the provider's finish reason, else how the gateway ended it (cancelled, failed, ...)."""
    usage = usage_of(outcome, running.job.prompt_tokens, outcome.text)
    record.ended(
        response_model=outcome.model_name,
        provider=outcome.provider,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        finish_reason=running.finish_reason or outcome.status,
        cache_read_tokens=usage.cache_read_tokens if outcome.usage is not None else None,
        cache_write_tokens=usage.cache_write_tokens if outcome.usage is not None else None,
    )
