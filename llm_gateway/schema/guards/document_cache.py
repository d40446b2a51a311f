"""Each distinct GraphQL document parsed and validated once, not on every operation.

Clients send the same few documents over and over (a chat is always ``messageEvents`` and
``sendMessage``); parsing and validating them anew was about a tenth of the gateway's CPU
per chat. ``CachedDocuments`` keeps both results in bounded LRU caches shared by every
operation of every schema in the process:

- a parsed document is keyed by the query text and the parse options, so the token limit
  still refuses a long document however often it comes;
- a validation result is keyed by the graphql-core schema, the query text (hashing a
  ``DocumentNode`` walks the whole tree) and the validation rules. Two schemas, or one
  schema built with other limits, never share an entry; for the cache to hit at all, the
  rule classes must be the same objects on every operation (see ``build_schema``).

Results are cached, validation errors included; exceptions are not (``lru_cache`` keeps
none). When parsing fails, or a validation rule crashes, the hook leaves the step to
strawberry, which runs it again and reports the failure exactly as without the cache.
Long documents are not cached: anyone can send documents, valid or not, and an entry costs
up to about 80 bytes of AST per character of query text (so at most about 40 MiB in all).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse, validate
from graphql.validation.rules import overlapping_fields_can_be_merged
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

CACHE_SIZE = 128
MAX_VALIDATION_ERRORS = 10

# graphql-core's OverlappingFieldsCanBeMergedRule compares same-named fields pairwise within
# a budget (500,000 by default: half a second of CPU), then stops with "Validation aborted.".
# Documents in use spend under 20. Read whenever the rule starts: it holds process-wide.
overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = OVERLAP_BUDGET = 20_000
MAX_CACHED_QUERY_CHARS = 4_000  # the chat's documents are under 500

ParseOptions = tuple[tuple[str, Any], ...]
Rules = tuple[type[ASTValidationRule], ...]


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parsed(query: str, options: ParseOptions) -> DocumentNode:
    return parse(query, **dict(options))


def validate_document(
    schema: GraphQLSchema, document: DocumentNode, rules: Rules
) -> list[GraphQLError]:
    """Strawberry's validation (its own rules added), stopping at ``MAX_VALIDATION_ERRORS``.

    Each error locates itself by scanning the document up to its position, so graphql-core's
    default of 100 errors made a long document with many small mistakes quadratic.
    """
    return validate(
        schema,
        document,
        (*rules, MaybeNullValidationRule, OneOfInputValidationRule),
        max_errors=MAX_VALIDATION_ERRORS,
    )


@functools.lru_cache(maxsize=CACHE_SIZE)
def _validated(
    schema: GraphQLSchema, query: str, options: ParseOptions, rules: Rules
) -> tuple[GraphQLError, ...]:
    # Validates the very document ``_parsed`` handed out (or, once evicted, an equal one).
    return tuple(validate_document(schema, _parsed(query, options), rules))


class CachedDocuments(SchemaExtension):
    """Parse and validate through the process-wide caches (see the module docstring).

    Every ``on_operation`` hook runs before parsing starts, so the token limit is already
    in the parse options and any added rule is already in the rules here. A document the
    operation limits refused right after parsing arrives with its errors set: not validated.
    """

    def __init__(self) -> None:
        super().__init__()
        self._document: DocumentNode | None = None
        self._options: ParseOptions = ()

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if query and len(query) <= MAX_CACHED_QUERY_CHARS and context.graphql_document is None:
            self._options = tuple(sorted(context.parse_options.items()))
            try:
                self._document = _parsed(query, self._options)
            except Exception:
                # Left unset: strawberry parses again and reports the error as usual.
                self._document = None
            context.graphql_document = self._document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if not (
            query
            and context.graphql_document is not None
            and context.validation_rules  # with none, strawberry does not validate either
            and context.pre_execution_errors is None
        ):
            yield
            return
        errors: tuple[GraphQLError, ...] | list[GraphQLError] | None
        try:
            if context.graphql_document is self._document:
                errors = _validated(
                    context.schema._schema, query, self._options, context.validation_rules
                )
            else:  # a long document, parsed by strawberry: validated, never cached
                errors = validate_document(
                    context.schema._schema, context.graphql_document, context.validation_rules
                )
        except Exception:
            # A crashing rule: left unset, strawberry runs the rules again and the
            # failure surfaces from there.
            errors = None
        if errors is not None:
            context.pre_execution_errors = list(errors)  # a copy: the tuple is shared
        yield
