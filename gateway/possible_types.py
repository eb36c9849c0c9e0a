"""`possibleTypes` for client caches: each interface and union of the schema, and the object types that can
stand for it.

Apollo Client needs it to match a fragment on an interface (`... on LiveEvent`) against an object whose
`__typename` is a concrete type (`StreamloopStream`); without it such fragments match nothing and the
nodes come back with their `__typename` only. The gateway serves it at `POSSIBLE_TYPES_PATH`, and
`live-gateway possible-types` prints it, both from the schema the code builds.
"""

from __future__ import annotations

from graphql import GraphQLInterfaceType, GraphQLSchema, GraphQLUnionType

POSSIBLE_TYPES_PATH = "/possible-types.json"


def possible_types(schema: GraphQLSchema) -> dict[str, list[str]]:
    """`{"LiveEvent": ["LivepushStream", ...], ...}`: every abstract type, its object types sorted by name."""
    return {
        name: sorted(t.name for t in schema.get_possible_types(named))
        for name, named in sorted(schema.type_map.items())
        if not name.startswith("__") and isinstance(named, GraphQLInterfaceType | GraphQLUnionType)
    }
