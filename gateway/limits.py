"""Limits on what one query may ask: depth, aliases, tokens and cost, all checked before it runs.

Depth, aliases and tokens are Strawberry's own extensions. Cost is ours: every field costs 1, and a field
that takes `first`/`last` (a page) or `ids` (a batch) multiplies what its selection costs by that size,
so `liveEvents(first: 100) { edges { node { id title } } }` costs 1 + 100 x 4. Sizes are read from the
arguments as execution will see them: coerced, with variables' values and defaults (`$n: Int = 100`, a
JSON `100.0`); a page without one counts at the default list size. Introspection of the schema
(`__schema`, `__type`) costs a fixed amount, its selection included; `__typename` costs nothing.

A root field that can call vendors adds `vendor_call_cost` for each call it can make: one for `node` or a
verb, one per id for `nodes`, one per source for what reads the index (which it may refresh), one per
target for a create or a retry. So a batch of ids costs what asking its vendors costs, not what its fields do.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from functools import cache, lru_cache, partial
from typing import Any

import orjson
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValueNode,
    VariableNode,
    get_named_type,
    is_interface_type,
    is_object_type,
    validate,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.query_depth_limiter import IgnoreContext

from gateway.settings import LimitSettings

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
#: the start of the messages of Strawberry's limiters, which carry no code of their own
LIMIT_MESSAGES = ("exceeds maximum operation depth", "aliases found. Allowed", "Document contains more than")
SIZE_ARGUMENTS = ("first", "last")
BATCH_ARGUMENT = "ids"
#: root fields that can call vendors, and how many calls one can make (None: one per id in `ids`)
VENDOR_CALLS: Mapping[str, int | None] = {
    "node": 1,
    "liveEvent": 1,
    "nodes": None,
    "liveEvents": 4,
    "liveEventStats": 4,
    "liveEventStatsUpdated": 4,
    "createLiveEvent": 4,
    "retryLiveEventOperation": 4,
    "startLiveEvent": 1,
    "stopLiveEvent": 1,
    "cancelLiveEvent": 1,
    "deleteLiveEvent": 1,
    "updateLiveEvent": 1,
    "refreshLiveEvent": 1,
    "registerForLiveEvent": 1,
}
#: the fields that introspect the schema, each costing `LimitSettings.introspection_cost`
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
#: no reported cost exceeds this, so that absurd sizes (an Int literal past 32 bits) stay a number JSON can carry
COST_CEILING = 10**12


def is_limit_error(message: str) -> bool:
    return any(marker in message for marker in LIMIT_MESSAGES)


def _introspection(context: IgnoreContext) -> bool:
    # GraphiQL's introspection query nests `ofType` deeper than any data query needs to.
    return context.field_name.startswith("__")


class DepthLimiter(QueryDepthLimiter):
    """Strawberry's depth limit, refusing (instead of failing on) a selection set with nothing in it, which
    the parser lets through although the grammar requires at least one selection."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validation_rules = [_empty_selection_refused(rule) for rule in self.validation_rules]


def _empty_selection_refused(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    class Guarded(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            try:
                super().__init__(context)
            except ValueError:
                ASTValidationRule.__init__(self, context)
                context.report_error(
                    GraphQLError(
                        "Syntax Error: a selection set must select at least one field",
                        extensions={"code": "GRAPHQL_PARSE_FAILED"},
                    )
                )

    return Guarded


class QueryCost:
    """The cost of one operation, as the module docstring defines it."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        default_size: int,
        introspection_cost: int,
        vendor_call_cost: int = 0,
    ) -> None:
        self.schema = schema
        self.vendor_call_cost = vendor_call_cost
        self.root: GraphQLNamedType | None = None
        self.fragments = fragments
        self.raw_variables = variables
        self.variables: VariableValues | None = None
        self.default_size = default_size
        self.introspection_cost = introspection_cost
        #: the variables the cost depends on: those given to a page's or a batch's arguments
        self.variables_read: set[str] = set()

    def of(self, operation: OperationDefinitionNode) -> int | None:
        """The operation's cost, or None when its variables do not coerce (it will not run, and says why)."""
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        coerced = get_variable_values(self.schema, operation.variable_definitions or (), dict(self.raw_variables))
        if isinstance(coerced, list):
            return None
        self.variables = coerced
        self.root = root
        return self._selection(operation.selection_set, root, frozenset())

    def _selection(self, selection_set: SelectionSetNode, parent: GraphQLNamedType, seen: frozenset[str]) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total = min(COST_CEILING, total + self._field(selection, parent, seen))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self._selection(selection.selection_set, target or parent, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:  # unknown or cyclic: validation reports it
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value) or parent
                total += self._selection(fragment.selection_set, target, seen | {name})
        return total

    def _field(self, node: FieldNode, parent: GraphQLNamedType, seen: frozenset[str]) -> int:
        name = node.name.value
        if name in INTROSPECTION_FIELDS:
            return self.introspection_cost
        if name.startswith("__"):
            return 0
        if not (is_object_type(parent) or is_interface_type(parent)):
            return 1
        definition = parent.fields.get(name)  # type: ignore[attr-defined]
        if definition is None:
            return 1
        size = self._size(node, definition)
        calls = self._vendor_calls(name, parent, size)
        if node.selection_set is None:
            return 1 + calls
        child = self._selection(node.selection_set, get_named_type(definition.type), seen)
        return min(COST_CEILING, 1 + calls + size * child)

    def _vendor_calls(self, name: str, parent: GraphQLNamedType, size: int) -> int:
        if parent is not self.root or name not in VENDOR_CALLS:
            return 0
        calls = VENDOR_CALLS[name]
        return self.vendor_call_cost * (size if calls is None else calls)

    def _size(self, node: FieldNode, definition: GraphQLField) -> int:
        if BATCH_ARGUMENT not in definition.args and not any(name in definition.args for name in SIZE_ARGUMENTS):
            return 1
        for argument in node.arguments or ():
            _variables_in(argument.value, self.variables_read)
        try:
            # The values execution will see: literals and variables coerced, defaults filled in.
            arguments = get_argument_values(definition, node, self.variables)
        except GraphQLError:  # execution reports it
            return 1
        if BATCH_ARGUMENT in definition.args:
            ids = arguments.get(BATCH_ARGUMENT)
            return max(1, len(ids)) if isinstance(ids, list) else 1
        for name in SIZE_ARGUMENTS:
            value = arguments.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                return max(1, value)
        return self.default_size


def _variables_in(value: ValueNode, names: set[str]) -> None:
    if isinstance(value, VariableNode):
        names.add(value.name.value)
    elif isinstance(value, ListValueNode):
        for item in value.values:
            _variables_in(item, names)
    elif isinstance(value, ObjectValueNode):
        for field in value.fields:
            _variables_in(field.value, names)


class CostMemo:
    """The operations already found within the cost limit, so that the same document with the same sizes is
    not walked again on every request.

    An operation's cost depends on its document and on nothing else than the values of the variables given
    to pages' and batches' arguments (`first`, `last`, `ids`): each entry keeps, for one document text and
    operation name, the names of those variables and the values of them seen within the limit. Whatever is
    over the limit, or has variables that do not coerce, is worked out again each time, so that its error
    is the one the walk gives. Documents are kept as many as the parse and validation caches keep.
    """

    #: value combinations kept per operation (distinct page sizes, or distinct batches of ids)
    VALUES_PER_OPERATION = 256

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._within: OrderedDict[tuple[str, str | None], tuple[frozenset[str], set[bytes]]] = OrderedDict()

    @staticmethod
    def _values(names: frozenset[str], variables: Mapping[str, Any]) -> bytes | None:
        try:
            return orjson.dumps([[name in variables, variables.get(name)] for name in sorted(names)])
        except TypeError:  # not JSON: never from a request, but then nothing is remembered
            return None

    def known_within(self, text: str, operation_name: str | None, variables: Mapping[str, Any]) -> bool:
        entry = self._within.get((text, operation_name))
        if entry is None:
            return False
        names, seen = entry
        values = self._values(names, variables)
        return values is not None and values in seen

    def remember_within(
        self, text: str, operation_name: str | None, names: frozenset[str], variables: Mapping[str, Any]
    ) -> None:
        values = self._values(names, variables)
        if values is None:
            return
        key = (text, operation_name)
        entry = self._within.get(key)
        if entry is None or entry[0] != names:
            entry = self._within[key] = (names, set())
            while len(self._within) > self.maxsize:
                self._within.popitem(last=False)
        else:
            self._within.move_to_end(key)
        if len(entry[1]) >= self.VALUES_PER_OPERATION:
            entry[1].clear()
        entry[1].add(values)


class CostLimiter(SchemaExtension):
    """Refuses an operation whose cost is over `max_cost`, as a validation error.

    It runs after the (cached, variable-free) validation, since the cost depends on the variables; where no
    validation cache came first, it validates the document itself. What was found within the limit is
    remembered (`CostMemo`), when one is given.
    """

    def __init__(
        self,
        max_cost: int,
        default_size: int,
        introspection_cost: int,
        vendor_call_cost: int = 0,
        memo: CostMemo | None = None,
    ) -> None:
        self.max_cost = max_cost
        self.default_size = default_size
        self.introspection_cost = introspection_cost
        self.vendor_call_cost = vendor_call_cost
        self.memo = memo

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            if context.pre_execution_errors is None:
                context.pre_execution_errors = validate(context.schema._schema, document, context.validation_rules)
            if not context.pre_execution_errors:
                error = self._checked(context.schema._schema, document, context.query, context.variables or {})
                if error is not None:
                    context.pre_execution_errors = [error]
        yield

    def _checked(
        self, schema: GraphQLSchema, document: DocumentNode, text: str | None, variables: Mapping[str, Any]
    ) -> GraphQLError | None:
        name = self.execution_context.operation_name
        if self.memo is None or text is None:
            return self._over_cost(schema, document, variables)[0]
        if self.memo.known_within(text, name, variables):
            return None
        error, read = self._over_cost(schema, document, variables)
        if error is None and read is not None:
            self.memo.remember_within(text, name, read, variables)
        return error

    def _over_cost(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]
    ) -> tuple[GraphQLError | None, frozenset[str] | None]:
        """The error of an operation over the limit, and the variables its cost depended on (None when some
        operation's variables did not coerce, so that its cost was not worked out)."""
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        cost = QueryCost(
            schema, fragments, variables, self.default_size, self.introspection_cost, self.vendor_call_cost
        )
        name = self.execution_context.operation_name
        coerced = True
        for operation in document.definitions:
            if not isinstance(operation, OperationDefinitionNode):
                continue
            if name and (operation.name is None or operation.name.value != name):
                continue
            total = cost.of(operation)
            coerced = coerced and total is not None
            if total is not None and total > self.max_cost:
                error = GraphQLError(
                    f"the query costs {total}, more than the {self.max_cost} allowed: ask for smaller pages "
                    "(first/last) or fewer ids, or split it",
                    operation,
                    extensions={"code": QUERY_TOO_COMPLEX, "cost": total, "maxCost": self.max_cost},
                )
                return error, None
        return None, frozenset(cost.variables_read) if coerced else None


#: distinct documents whose parse and validation are kept (Strawberry keeps the caches per size, process-wide)
DOCUMENT_CACHE_SIZE = 1024


class _ByText:
    """A parsed document that a cache knows by the text it was parsed from."""

    __slots__ = ("document", "text")

    def __init__(self, text: str, document: DocumentNode) -> None:
        self.text = text
        self.document = document

    def __hash__(self) -> int:
        return hash(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByText) and other.text == self.text


@cache
def validation_cache(maxsize: int) -> Callable[[_ByText, GraphQLSchema, Any], list[GraphQLError]]:
    from strawberry.schema.schema import validate_document

    def validate_text(keyed: _ByText, schema: GraphQLSchema, rules: Any) -> list[GraphQLError]:
        return validate_document(schema, keyed.document, rules)

    return lru_cache(maxsize=maxsize)(validate_text)


class TextValidationCache(SchemaExtension):
    """Strawberry's `ValidationCache`, keyed by the query's text rather than by its parsed document: one text
    always parses to the same document here, and hashing a document walks every node of it each time."""

    def __init__(self, maxsize: int) -> None:
        self.validate = validation_cache(maxsize)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is not None:
            keyed = _ByText(context.query, context.graphql_document)
            context.pre_execution_errors = self.validate(keyed, context.schema._schema, context.validation_rules)
        yield


class DocumentCache(ParserCache):
    """Strawberry's parser cache, except that a document which does not parse is left to Strawberry's own
    parser: its error is then a result with the error in it, where raised from this hook it would escape a
    streamed operation (SSE, websocket) as an exception."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        except GraphQLError:
            context.graphql_document = None
        yield


def limit_extensions(limits: LimitSettings) -> list[Callable[[], SchemaExtension]]:
    """Factories, so that each operation gets extensions of its own. The limiters' validation rules are made
    once, here: the validation cache is keyed by the rules, and new rule classes per request would miss it."""
    rules = [
        *DepthLimiter(max_depth=limits.max_depth, should_ignore=_introspection).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [
        partial(MaxTokensLimiter, max_token_count=limits.max_tokens),
        partial(DocumentCache, maxsize=DOCUMENT_CACHE_SIZE),
        partial(AddValidationRules, rules),
        partial(TextValidationCache, DOCUMENT_CACHE_SIZE),
        partial(
            CostLimiter,
            limits.max_cost,
            limits.default_list_size,
            limits.introspection_cost,
            limits.vendor_call_cost,
            CostMemo(DOCUMENT_CACHE_SIZE),
        ),
    ]
