"""The Shopify sandbox's Admin GraphQL schema and Shopify's calculated query cost.

The schema is ``admin_subset.graphql``: the types, fields and arguments sync-worker uses, with Shopify's
names and signatures, written for this repository (Shopify's published SDL is not copied here). A test holds
it to the published 2026-01 SDL wherever ``../shared/specs/shopify`` is present.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    assert_valid_schema,
    build_schema,
    get_named_type,
    value_from_ast_untyped,
)

SUBSET_FILE = Path(__file__).with_name("admin_subset.graphql")

MUTATION_COST = 10  # Shopify: every mutation field costs 10 points
CONNECTION_BASE_COST = 2  # a connection costs 2 plus its page size times the cost of one item


@lru_cache(maxsize=1)
def load_schema() -> GraphQLSchema:
    """The sandbox's schema, shipped with the package and built once per process."""
    schema = build_schema(SUBSET_FILE.read_text(encoding="utf-8"))
    assert_valid_schema(schema)  # ours, so graphql-core's schema checks apply in full, at load time
    return schema


def query_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any] | None,
) -> int:
    """Requested cost as Shopify documents it: scalars and enums 0, objects 1, connections
    2 + page size x item cost, each mutation field 10."""
    return _Costing(schema, fragments, variables or {}).operation(operation)


def actual_cost(data: Any) -> int:
    """Cost of what a query returned, by the same rules as ``query_cost`` but counting the objects that
    are there: a connection costs 2 plus its items, an object 1, scalars 0. Shopify refunds the
    difference to the requested cost once the query has run."""
    if isinstance(data, list):
        return sum(actual_cost(item) for item in data)
    if not isinstance(data, Mapping):
        return 0
    inner = sum(actual_cost(value) for value in data.values())
    return inner + (2 if "nodes" in data or "edges" in data else 1)


Composite = GraphQLObjectType | GraphQLInterfaceType


class _Costing:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def operation(self, operation: OperationDefinitionNode) -> int:
        if operation.operation == OperationType.MUTATION:
            root = self.schema.mutation_type
            assert root is not None
            return sum(
                MUTATION_COST + self.field(owner, field, top=True)
                for owner, field in self.fields(root, operation.selection_set)
            )
        assert self.schema.query_type is not None
        return self.selection(self.schema.query_type, operation.selection_set)

    def fields(self, parent: Composite, selection_set: SelectionSetNode) -> list[tuple[Composite, FieldNode]]:
        """The fields selected, with inline fragments and fragment spreads expanded onto their types."""
        out: list[tuple[Composite, FieldNode]] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                out.append((parent, selection))
                continue
            if isinstance(selection, InlineFragmentNode):
                condition, inner = selection.type_condition, selection.selection_set
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in self.fragments:
                fragment = self.fragments[selection.name.value]
                condition, inner = fragment.type_condition, fragment.selection_set
            else:
                continue
            typed = self.schema.get_type(condition.name.value) if condition else None
            owner = typed if isinstance(typed, GraphQLObjectType | GraphQLInterfaceType) else parent
            out.extend(self.fields(owner, inner))
        return out

    def selection(self, parent: Composite, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        return sum(self.field(owner, field) for owner, field in self.fields(parent, selection_set))

    def field(self, owner: Composite, field: FieldNode, *, top: bool = False) -> int:
        definition = owner.fields.get(field.name.value)
        if definition is None:
            return 0
        named = get_named_type(definition.type)
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            return 0  # scalars and enums (unions are not selected by our documents)
        if top:  # a mutation's payload: the 10 points cover the payload object itself
            return self.selection(named, field.selection_set)
        if named.name.endswith("Connection") and field.selection_set is not None:
            return self.connection(named, field)
        return 1 + self.selection(named, field.selection_set)

    def connection(self, connection: Composite, field: FieldNode) -> int:
        size = int(self.argument(field, "first") or self.argument(field, "last") or 0)
        item = page_info = 0
        assert field.selection_set is not None
        for owner, child in self.fields(connection, field.selection_set):
            cost = self.field(owner, child)
            if child.name.value == "pageInfo":
                page_info += cost
            elif child.name.value == "edges":
                item = max(item, cost - 1)  # the edge wraps the node: one object per item, not two
            else:
                item = max(item, cost)
        return CONNECTION_BASE_COST + size * max(1, item) + page_info

    def argument(self, field: FieldNode, name: str) -> Any:
        for argument in field.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, dict(self.variables))
        return None
