"""Operation limits (depth, aliases, cost) and NUL-free strings, checked in one linear pass.

Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` expand every fragment spread
anew: 900 bytes of fragments that each spread the next one twice, 21 deep, took ten seconds
of CPU. Here each definition (operation or fragment) is walked once, and a fragment's
totals, computed once after those of the fragments it spreads, serve all its spreads: the
work is linear in the document, however large the operation would be once expanded.

Measured per operation, as if its fragments were expanded:

- depth: field nesting, counted as ``QueryDepthLimiter`` does (``{ me { userId } }`` is 1;
  introspection fields such as ``__schema`` count, what lies under them does not);
- aliases: aliased fields, summed over the document (``MaxAliasesLimiter``'s count);
- cost: field selections (the document above: four million). Not multiplied by ``first``:
  a page size is usually a variable, unknown to validation; ``graphql_max_page_size``
  bounds each page instead.

A fragment that spreads itself, directly or not, is refused: its expansion has no end. An
unknown fragment counts as empty; graphql-core's ``KnownFragmentNamesRule`` reports it.
PostgreSQL refuses NUL in text columns, so a string holding one (a literal anywhere in the
document, a string or key anywhere in the variables) is refused here as VALIDATION_FAILED.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
)
from strawberry.extensions import SchemaExtension

from llm_gateway.errors import ValidationFailed
from llm_gateway.settings import Settings

NUL = "\x00"
CAP = 2**53
"""Totals saturate here: a long chain of doubling fragments must not grow huge integers."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_cost: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.graphql_max_depth, settings.graphql_max_aliases, settings.graphql_max_cost
        )


@dataclass(frozen=True, slots=True)
class Measure:
    """An operation's or a fragment's totals, its fragments expanded."""

    depth: int
    aliases: int
    cost: int


@dataclass(slots=True)
class _Own:
    """One definition's own selections, its spreads not yet expanded: each spread with its
    field nesting, or None under an introspection field (where depth is not counted)."""

    depth: int = 0
    aliases: int = 0
    cost: int = 0
    spreads: list[tuple[str, int | None]] = field(default_factory=list)


@dataclass(slots=True)
class Analysis:
    """A document's operations measured, a NUL literal, a fragment on a cycle (if any), and
    ``steps``: the nodes visited and spreads combined, the work that tests bound."""

    operations: list[tuple[OperationDefinitionNode, Measure]] = field(default_factory=list)
    nul: StringValueNode | None = None
    cycle: str | None = None
    steps: int = 0


def analyse(document: DocumentNode) -> Analysis:
    """Measure every operation of ``document``; each definition is walked exactly once."""
    analysis = Analysis()
    own: dict[str, _Own] = {}
    operations: list[tuple[OperationDefinitionNode, _Own]] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            # A repeated name is UniqueFragmentNamesRule's to report; the first one counts.
            if definition.name.value not in own:
                own[definition.name.value] = _walk(definition, analysis)
        elif isinstance(definition, OperationDefinitionNode):
            operations.append((definition, _walk(definition, analysis)))
    totals: dict[str, Measure] = {}
    for operation, mine in operations:
        for name, _ in mine.spreads:
            if analysis.cycle is None and name in own and name not in totals:
                analysis.cycle = _resolve(name, own, totals, analysis)
        if analysis.cycle is None:
            analysis.operations.append((operation, _combine(mine, totals, analysis)))
    return analysis


def _walk(definition: OperationDefinitionNode | FragmentDefinitionNode, analysis: Analysis) -> _Own:
    """One definition's own fields, aliases, deepest nesting and spreads; NUL literals."""
    mine = _Own()
    values: list[ValueNode] = []
    for variable in definition.variable_definitions or ():
        values.extend(_directive_values(variable.directives))
        if variable.default_value is not None:
            values.append(variable.default_value)
    values.extend(_directive_values(definition.directives))
    stack: list[tuple[SelectionSetNode, int, bool]] = [(definition.selection_set, 0, True)]
    while stack:
        selection_set, level, counted = stack.pop()
        for selection in selection_set.selections:
            analysis.steps += 1
            values.extend(_directive_values(selection.directives))
            if isinstance(selection, FieldNode):
                mine.cost += 1
                mine.aliases += selection.alias is not None
                if counted:
                    mine.depth = max(mine.depth, level)
                values.extend(argument.value for argument in selection.arguments or ())
                if selection.selection_set is not None:
                    below = counted and not selection.name.value.startswith("__")
                    stack.append((selection.selection_set, level + 1, below))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, level, counted))
            elif isinstance(selection, FragmentSpreadNode):
                mine.spreads.append((selection.name.value, level if counted else None))
                values.extend(argument.value for argument in selection.arguments or ())
    descriptions = [definition.description]
    descriptions.extend(v.description for v in definition.variable_definitions or ())
    values.extend(d for d in descriptions if d is not None)
    if analysis.nul is None:
        analysis.nul = _nul_literal(values, analysis)
    return mine


def _directive_values(directives: tuple[DirectiveNode, ...] | None) -> Iterator[ValueNode]:
    for directive in directives or ():
        yield from (argument.value for argument in directive.arguments or ())


def _nul_literal(values: list[ValueNode], analysis: Analysis) -> StringValueNode | None:
    """A string literal holding a NUL, however deep in lists and input objects."""
    while values:
        value = values.pop()
        analysis.steps += 1
        if isinstance(value, StringValueNode):
            if NUL in value.value:
                return value
        elif isinstance(value, ListValueNode):
            values.extend(value.values)
        elif isinstance(value, ObjectValueNode):
            values.extend(item.value for item in value.fields)
    return None


def _resolve(
    start: str, own: dict[str, _Own], totals: dict[str, Measure], analysis: Analysis
) -> str | None:
    """Total ``start`` and the fragments it spreads, deepest first; else one on a cycle.

    An explicit stack: a chain of fragments may be longer than Python's recursion limit.
    """
    open_ = {start}
    stack = [(start, iter(own[start].spreads))]
    while stack:
        name, pending = stack[-1]
        for spread, _ in pending:
            if spread not in own or spread in totals:
                continue
            if spread in open_:
                return spread
            open_.add(spread)
            stack.append((spread, iter(own[spread].spreads)))
            break
        else:
            stack.pop()
            open_.discard(name)
            totals[name] = _combine(own[name], totals, analysis)
    return None


def _combine(mine: _Own, totals: dict[str, Measure], analysis: Analysis) -> Measure:
    """``mine`` with the totals of the fragments it spreads added in (unknown ones: none)."""
    depth, aliases, cost = mine.depth, mine.aliases, mine.cost
    for name, level in mine.spreads:
        analysis.steps += 1
        spread = totals.get(name)
        if spread is None:
            continue
        aliases = min(CAP, aliases + spread.aliases)
        cost = min(CAP, cost + spread.cost)
        if level is not None:
            depth = max(depth, level + spread.depth)
    return Measure(depth, aliases, cost)


def check(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    """The reasons to refuse ``document`` before any other validation rule runs."""
    analysis = analyse(document)
    if analysis.nul is not None:
        return [nul_error("A string in the document", [analysis.nul])]
    if analysis.cycle is not None:
        name = analysis.cycle
        on_cycle = [
            d
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode) and d.name.value == name
        ]
        return [GraphQLError(f"Cannot spread fragment '{name}' within itself.", on_cycle[:1])]
    errors: list[GraphQLError] = []
    for operation, measure in analysis.operations:
        name = operation.name.value if operation.name else "anonymous"
        if measure.depth > limits.max_depth:
            message = f"'{name}' exceeds maximum operation depth of {limits.max_depth}"
            errors.append(GraphQLError(message, [operation]))
        if measure.cost > limits.max_cost:
            selected = f"{measure.cost:,}" if measure.cost < CAP else f"over {CAP:,}"
            message = (
                f"'{name}' exceeds maximum operation cost of {limits.max_cost:,}: it selects "
                f"{selected} fields once its fragments are expanded"
            )
            errors.append(GraphQLError(message, [operation]))
    aliases = min(CAP, sum(measure.aliases for _, measure in analysis.operations))
    if aliases > limits.max_aliases:
        errors.append(GraphQLError(f"{aliases} aliases found. Allowed: {limits.max_aliases}"))
    return errors


def nul_error(where: str, nodes: list[Node] | None = None, **details: Any) -> GraphQLError:
    """VALIDATION_FAILED (``ShapeErrors`` takes the code from the domain error)."""
    failure = ValidationFailed(
        f"{where} contains a NUL character (U+0000), which is not allowed.", **details
    )
    return GraphQLError(failure.message, nodes, original_error=failure)


def nul_variable(variables: dict[str, Any] | None) -> str | None:
    """The first variable that holds a NUL in a string or a key, however deeply nested."""
    for name, value in (variables or {}).items():
        pending = [name, value]
        while pending:
            item = pending.pop()
            if isinstance(item, str) and NUL in item:
                return name
            if isinstance(item, dict):
                pending.extend(item.items())  # (key, value) pairs, taken apart below
            elif isinstance(item, list | tuple):
                pending.extend(item)
    return None


class OperationLimits(SchemaExtension):
    """Refuse an operation over the limits, or with a NUL in a string, right after parsing.

    The errors become ``pre_execution_errors``, so strawberry and ``CachedDocuments`` skip
    graphql-core's validation: a refused document never reaches the costlier rules. The
    hook is the schema's, so HTTP and websocket operations alike pass through it.
    """

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits

    def on_parse(self) -> Iterator[None]:
        yield
        context = self.execution_context
        document = context.graphql_document
        if document is None or context.pre_execution_errors is not None:
            return  # not parsed: strawberry reports why
        errors = check(document, self.limits)
        variable = nul_variable(context.variables)
        if variable is not None:
            errors.append(nul_error(f"Variable '${variable}'", field=variable))
        if errors:
            context.pre_execution_errors = errors
