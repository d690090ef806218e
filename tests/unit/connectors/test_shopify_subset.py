"""The sandbox's schema (connectors/shopify/admin_subset.graphql) is a true part of Shopify's Admin API.

Wherever Shopify's published 2026-01 SDL is at ``../shared/specs/shopify`` (CI, the main checkout), every
type, field, argument, input field and enum value of the subset must be there with the identical signature,
and the connector's documents must validate against both. A fresh clone has no shared folder: those tests
skip and say so, while everything else about the Shopify connector and sandbox runs on the subset alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    build_client_schema,
    build_schema,
    is_non_null_type,
    parse,
    print_ast,
    specified_scalar_types,
    validate,
)

from connectors.shopify.schema import load_schema
from tests.unit.connectors.shopify_documents import ALL_IDS, all_documents

ROOT = Path(__file__).resolve().parents[3]
# shared/ sits beside the repository (CI, the main checkout) or beside the folder holding a work tree.
SPECS = [folder / "shared" / "specs" / "shopify" for folder in (ROOT.parent, ROOT.parent.parent)]
PUBLISHED_SDL = "admin-2026-01.public.graphql"
PUBLISHED_INTROSPECTION = "admin-2026-04.introspection.json"


def drift(subset: GraphQLSchema, published: GraphQLSchema) -> list[str]:
    """Where the subset departs from Shopify's schema: a type, field, argument, input field or enum value it
    invents or types differently, an enum value or required argument it leaves out."""
    problems = [
        f"{root}: {getattr(subset, root)} here, {getattr(published, root)} in Shopify's schema"
        for root in ("query_type", "mutation_type")
        if str(getattr(subset, root)) != str(getattr(published, root))
    ]
    for name, ours in subset.type_map.items():
        if name.startswith("__") or name in specified_scalar_types:
            continue
        theirs = published.type_map.get(name)
        if theirs is None:
            problems.append(f"{name}: not in Shopify's schema")
        elif type(ours) is not type(theirs):
            problems.append(f"{name}: a {type(ours).__name__} here, a {type(theirs).__name__} in Shopify's")
        else:
            problems += _type_drift(name, ours, theirs)
    return problems


def _type_drift(name: str, ours: GraphQLNamedType, theirs: GraphQLNamedType) -> list[str]:
    if isinstance(ours, GraphQLEnumType) and isinstance(theirs, GraphQLEnumType):
        invented = [
            f"{name}.{value}: not in Shopify's schema" for value in ours.values.keys() - theirs.values
        ]
        missing = [
            f"{name}.{value}: Shopify's value is missing" for value in theirs.values.keys() - ours.values
        ]
        return sorted(invented + missing)
    if isinstance(ours, GraphQLInputObjectType) and isinstance(theirs, GraphQLInputObjectType):
        return _inputs_drift(name, ours.fields, theirs.fields)
    if isinstance(ours, GraphQLObjectType | GraphQLInterfaceType) and isinstance(
        theirs, GraphQLObjectType | GraphQLInterfaceType
    ):
        implemented = {interface.name for interface in theirs.interfaces}
        problems = [
            f"{name}: implements {interface.name}, Shopify's does not"
            for interface in ours.interfaces
            if interface.name not in implemented
        ]
        for field_name, field in ours.fields.items():
            where = f"{name}.{field_name}"
            their = theirs.fields.get(field_name)
            if their is None:
                problems.append(f"{where}: not in Shopify's schema")
                continue
            if str(field.type) != str(their.type):
                problems.append(f"{where}: {field.type} here, {their.type} in Shopify's schema")
            if field.deprecation_reason != their.deprecation_reason:
                problems.append(
                    f"{where}: deprecated {field.deprecation_reason!r}, Shopify's {their.deprecation_reason!r}"
                )
            problems += _inputs_drift(where, field.args, their.args)
        return problems
    return []  # a scalar: its name is its whole signature


def _inputs_drift(
    where: str,
    ours: Mapping[str, GraphQLArgument] | Mapping[str, GraphQLInputField],
    theirs: Mapping[str, GraphQLArgument] | Mapping[str, GraphQLInputField],
) -> list[str]:
    """Arguments of a field or fields of an input object: same type and default, none of Shopify's required
    ones left out (a document without it would pass here and fail at Shopify)."""
    problems = []
    for name, value in ours.items():
        their = theirs.get(name)
        if their is None:
            problems.append(f"{where}({name}): not in Shopify's schema")
        elif str(value.type) != str(their.type):
            problems.append(f"{where}({name}): {value.type} here, {their.type} in Shopify's schema")
        elif _default(value) != _default(their):
            problems.append(
                f"{where}({name}): default {_default(value)} here, {_default(their)} in Shopify's"
            )
    for name, their in theirs.items():
        if name not in ours and is_non_null_type(their.type) and _default(their) is None:
            problems.append(f"{where}({name}): required by Shopify, missing here")
    return problems


def _default(value: GraphQLArgument | GraphQLInputField) -> str | None:
    """The default as written in the SDL (both schemas here are built from SDL, so the node is there)."""
    node = value.ast_node
    return print_ast(node.default_value) if node is not None and node.default_value is not None else None


# --- the check itself, on a small stand-in for Shopify's schema (runs everywhere) ------------------------

SHOPIFY_LIKE = """
schema { query: QueryRoot }
interface Node { id: ID! }
type QueryRoot { customers(first: Int, query: String!, sortKey: SortKeys = ID): [Customer!]! }
type Customer implements Node { id: ID! email: String @deprecated(reason: "gone") tags: [String!]! }
enum SortKeys { ID NAME }
input TagsInput { id: ID! tags: [String!]! note: String }
type Extra { field: Int }
"""
FAITHFUL = """
schema { query: QueryRoot }
interface Node { id: ID! }
type QueryRoot { customers(query: String!, sortKey: SortKeys = ID): [Customer!]! }
type Customer implements Node { id: ID! email: String @deprecated(reason: "gone") }
enum SortKeys { ID NAME }
input TagsInput { id: ID! tags: [String!]! }
"""


def test_drift_check_accepts_a_subset_that_leaves_out_optional_parts() -> None:
    assert drift(build_schema(FAITHFUL), build_schema(SHOPIFY_LIKE)) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("id: ID! email", "id: ID! colour: String email"), "Customer.colour: not in Shopify's schema"),
        (("id: ID! email", "id: ID email"), "Customer.id: ID here, ID! in Shopify's schema"),
        (('reason: "gone"', 'reason: "old"'), "Customer.email: deprecated 'old', Shopify's 'gone'"),
        (("query: String!,", "query: String!, after: String,"), "QueryRoot.customers(after): not in Shopify"),
        (("query: String!,", "query: String,"), "QueryRoot.customers(query): String here, String! in"),
        (("query: String!,", ""), "QueryRoot.customers(query): required by Shopify, missing here"),
        (("= ID)", "= NAME)"), "QueryRoot.customers(sortKey): default NAME here, ID in Shopify's"),
        (("ID NAME", "ID NAME COLOUR"), "SortKeys.COLOUR: not in Shopify's schema"),
        (("ID NAME", "ID"), "SortKeys.NAME: Shopify's value is missing"),
        (("{ id: ID! tags", "{ tags"), "TagsInput(id): required by Shopify, missing here"),
        (("tags: [String!]! }", "tags: [String!] }"), "TagsInput(tags): [String!] here, [String!]! in"),
        (("enum SortKeys", "scalar Colour enum SortKeys"), "Colour: not in Shopify's schema"),
        (
            ("input TagsInput", "type TagsPayload { ok: Int } type TagsInput"),
            "TagsInput: a GraphQLObjectType",
        ),
        (("schema { query: QueryRoot }", "schema { query: Root } type Root { x: Int }"), "query_type: Root"),
    ],
)
def test_drift_check_names_what_the_subset_invents_changes_or_leaves_out(
    change: tuple[str, str], problem: str
) -> None:
    subset = FAITHFUL.replace(*change)
    assert subset != FAITHFUL
    problems = drift(build_schema(subset), build_schema(SHOPIFY_LIKE))
    assert any(found.startswith(problem) for found in problems), problems


@pytest.mark.parametrize("document", all_documents(), ids=ALL_IDS)
def test_connector_documents_validate_against_the_sandbox_schema(document: str) -> None:
    assert validate(load_schema(), parse(document)) == []


# --- against Shopify's published schema (where shared/ is present) --------------------------------------


def _published_file(name: str) -> Path:
    found = next((folder / name for folder in SPECS if (folder / name).is_file()), None)
    if found is None:
        pytest.skip(f"Shopify's published {name} is in none of {', '.join(map(str, SPECS))}: not compared")
    return found


@pytest.fixture(scope="module")
def published() -> GraphQLSchema:
    # graphql-core rejects some of Shopify's deprecations in its own schema checks: taken as valid, as
    # Shopify's own tooling takes it.
    return build_schema(_published_file(PUBLISHED_SDL).read_text(encoding="utf-8"), assume_valid=True)


@pytest.fixture(scope="module")
def introspected() -> GraphQLSchema:
    data = json.loads(_published_file(PUBLISHED_INTROSPECTION).read_text(encoding="utf-8"))["data"]
    return build_client_schema(data, assume_valid=True)


@pytest.mark.xdist_group("shopify-published-schema")
def test_subset_has_shopifys_2026_01_signature_for_everything_it_holds(published: GraphQLSchema) -> None:
    assert drift(load_schema(), published) == []


@pytest.mark.xdist_group("shopify-published-schema")
@pytest.mark.parametrize("document", all_documents(), ids=ALL_IDS)
def test_connector_documents_validate_against_the_subset_and_the_published_schema(
    document: str, published: GraphQLSchema
) -> None:
    for schema in (load_schema(), published):
        assert validate(schema, parse(document)) == []


@pytest.mark.xdist_group("shopify-published-schema")
@pytest.mark.parametrize("document", all_documents(), ids=ALL_IDS)
def test_connector_documents_validate_against_the_2026_04_introspection(
    document: str, introspected: GraphQLSchema
) -> None:
    assert validate(introspected, parse(document)) == []
