"""Schema documents, drafts, ``$id``/``$anchor`` indexing and ``$ref`` resolution.

Every schema location the compiler looks at is a :class:`Node`: the JSON value,
its base URI, its draft and a JSON pointer for messages.  Documents are indexed
once (resources by ``$id``, plain and dynamic anchors); references resolve
against the base URI in effect, through the documents indexed so far, the
caller's ``registry={uri: schema}`` and, for the official meta-schemas only,
the copies shipped with ``jsonschema`` (``jsonschema_specifications``) when it
is installed.  Nothing is ever fetched from the network.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote, urldefrag, urljoin

from ..errors import InvalidSyntax

__all__ = ["Node", "Registry", "SchemaError", "DRAFTS", "draft_of"]


class SchemaError(InvalidSyntax):
    """A schema that is not a valid JSON Schema (or a ``$ref`` that cannot be resolved)."""

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(f"{message} (at {where})" if where else message)


# draft tags, ordered
D4, D6, D7, D2019, D2020 = 4, 6, 7, 2019, 2020
#: ``default``: 2020-12 semantics that also accept older spellings (see docs).
DEFAULT = 0
DRAFTS = {
    "http://json-schema.org/draft-04/schema": D4,
    "http://json-schema.org/draft-06/schema": D6,
    "http://json-schema.org/draft-07/schema": D7,
    "https://json-schema.org/draft/2019-09/schema": D2019,
    "https://json-schema.org/draft/2020-12/schema": D2020,
}
DRAFT_NAMES = {D4: "draft-04", D6: "draft-06", D7: "draft-07", D2019: "2019-09", D2020: "2020-12",
               DEFAULT: "default (2020-12 + legacy spellings)"}


def draft_of(uri) -> int | None:
    if not isinstance(uri, str):
        return None
    u = uri.strip().rstrip("#")
    if u.startswith("https://json-schema.org/draft-0") or u.startswith("http://json-schema.org/draft/"):
        u = ("http://" if "draft-0" in u else "https://") + u.split("://", 1)[1]
    return DRAFTS.get(u)


_SINGLE = ("additionalItems", "additionalProperties", "contains", "not", "if", "then", "else",
           "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema")
_ARRAYS = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_KWS = frozenset(_SINGLE + _ARRAYS + _MAPS + ("items", "dependencies"))


@dataclass(eq=False)
class Node:
    id: int
    schema: object
    base: str
    doc: str
    pointer: str
    draft: int
    resource: str  # URI of the enclosing resource

    @cached_property  # messages and evaluation read it often; the fields never change
    def where(self) -> str:
        return ("#" if not self.doc or self.doc.startswith("urn:structgen:") else self.doc + "#") + self.pointer


def _esc(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _is_absolute(uri: str) -> bool:
    head = uri.split("#", 1)[0]
    return ":" in head and head.split(":", 1)[0].replace("+", "").replace("-", "").replace(".", "").isalnum() \
        and head[0].isalpha()


@functools.lru_cache(maxsize=8192)
def _defrag(uri: str):
    """``urldefrag`` memoised: every $ref is split, and schemas repeat theirs (~3 us a parse)."""
    return urldefrag(uri)


@functools.lru_cache(maxsize=8192)
def resolve_uri(base: str, ref: str) -> str:
    if ref.startswith("#"):
        return _defrag(base)[0] + ref
    if _is_absolute(ref):
        return ref
    if base.startswith("urn:") or base.startswith("tag:"):
        return ref
    return urljoin(base, ref)


@dataclass
class _Resource:
    uri: str
    node: Node
    anchors: dict = field(default_factory=dict)
    dynamic_anchors: dict = field(default_factory=dict)
    recursive_anchor: bool = False


class Registry:
    def __init__(self, root_schema, *, default_draft: int = DEFAULT, external: dict | None = None,
                 root_uri: str = "urn:structgen:root"):
        self.nodes: list[Node] = []
        self.by_loc: dict[tuple[str, str], Node] = {}
        self.resources: dict[str, _Resource] = {}
        self.external = {_defrag(k)[0]: v for k, v in (external or {}).items()}
        self.default_draft = default_draft
        self.uses_dynamic = False
        self.uses_unevaluated = False
        self.root = self.add_document(root_uri, root_schema)

    # ------------------------------------------------------------ indexing
    def add_document(self, uri: str, schema) -> Node:
        draft = self.default_draft
        if isinstance(schema, dict):
            draft = draft_of(schema.get("$schema")) or draft
        root = self._index(schema, uri, uri, "", draft, uri)
        return root

    def _new_node(self, schema, base, doc, pointer, draft, resource) -> Node:
        node = Node(len(self.nodes), schema, base, doc, pointer, draft, resource)
        self.nodes.append(node)
        self.by_loc[(doc, pointer)] = node
        return node

    def _id_of(self, schema: dict, draft: int) -> str | None:
        if draft in (D4, D6, D7) and "$ref" in schema:
            return None  # every sibling of $ref is ignored before 2019-09, $id included
        v = schema.get("$id")
        if draft == D4:
            v = schema.get("id")
        elif v is None and draft == DEFAULT:
            legacy = schema.get("id")
            if isinstance(legacy, str) and (legacy.startswith("#") or _is_absolute(legacy)):
                v = legacy
        return v if isinstance(v, str) else None

    def _index(self, schema, base, doc, pointer, draft, resource) -> Node:
        # iterative walk over subschema positions
        root = None
        stack = [(schema, base, pointer, draft, resource)]
        while stack:
            sch, base, ptr, dr, res = stack.pop()
            if (doc, ptr) in self.by_loc:
                node = self.by_loc[(doc, ptr)]
                root = root or node
                continue
            if isinstance(sch, dict):
                d2 = draft_of(sch.get("$schema"))
                if d2 is not None:
                    dr = d2
                sid = self._id_of(sch, dr)
                anchor_from_id = None
                if sid is not None:
                    if sid.startswith("#") and dr in (D4, D6, D7, DEFAULT):
                        anchor_from_id = sid[1:]
                    else:
                        new = resolve_uri(base, sid)
                        base = _defrag(new)[0]
                        res = base
                node = self._new_node(sch, base, doc, ptr, dr, res)
                if res not in self.resources:
                    self.resources[res] = _Resource(res, node)
                r = self.resources[res]
                if anchor_from_id:
                    r.anchors.setdefault(anchor_from_id, node)
                a = sch.get("$anchor")
                if isinstance(a, str) and dr in (D2019, D2020, DEFAULT):
                    r.anchors.setdefault(a, node)
                da = sch.get("$dynamicAnchor")
                if isinstance(da, str) and dr in (D2020, DEFAULT):
                    r.anchors.setdefault(da, node)
                    r.dynamic_anchors.setdefault(da, node)
                    self.uses_dynamic = True
                if sch.get("$recursiveAnchor") is True and dr in (D2019, DEFAULT):
                    r.recursive_anchor = True
                    self.uses_dynamic = True
                if "unevaluatedProperties" in sch or "unevaluatedItems" in sch:
                    self.uses_unevaluated = True
                if "$dynamicRef" in sch or "$recursiveRef" in sch:
                    self.uses_dynamic = True
                if _SUBSCHEMA_KWS.isdisjoint(sch):  # a leaf: no keyword holds a subschema
                    root = root or node
                    continue
                for k in _SINGLE:
                    if k in sch and isinstance(sch[k], (dict, bool)):
                        stack.append((sch[k], base, f"{ptr}/{k}", dr, res))
                if isinstance(sch.get("items"), (dict, bool)):
                    stack.append((sch["items"], base, f"{ptr}/items", dr, res))
                elif isinstance(sch.get("items"), list):
                    for i, sub in enumerate(sch["items"]):
                        stack.append((sub, base, f"{ptr}/items/{i}", dr, res))
                for k in _ARRAYS:
                    if isinstance(sch.get(k), list):
                        for i, sub in enumerate(sch[k]):
                            stack.append((sub, base, f"{ptr}/{k}/{i}", dr, res))
                for k in _MAPS:
                    if isinstance(sch.get(k), dict):
                        for name, sub in sch[k].items():
                            if isinstance(sub, (dict, bool)):
                                stack.append((sub, base, f"{ptr}/{k}/{_esc(name)}", dr, res))
                if isinstance(sch.get("dependencies"), dict):
                    for name, sub in sch["dependencies"].items():
                        if isinstance(sub, (dict, bool)):
                            stack.append((sub, base, f"{ptr}/dependencies/{_esc(name)}", dr, res))
            else:
                node = self._new_node(sch, base, doc, ptr, dr, res)
            root = root or node
        return root

    def is_dynamic_resource(self, uri: str) -> bool:
        r = self.resources.get(uri)
        return r is not None and bool(r.dynamic_anchors or r.recursive_anchor)

    # ------------------------------------------------------------ lookups
    def child(self, node: Node, *path) -> Node:
        ptr = node.pointer + "".join("/" + _esc(p) for p in path)
        hit = self.by_loc.get((node.doc, ptr))
        if hit is not None:
            return hit
        value = node.schema
        for p in path:
            value = value[p]
        return self._index(value, node.base, node.doc, ptr, node.draft, node.resource)

    def _resource(self, uri: str, where: str) -> _Resource:
        r = self.resources.get(uri)
        if r is not None:
            return r
        doc = self.external.get(uri)
        if doc is None:
            doc = _metaschema(uri)
        if doc is None:
            known = ", ".join(sorted(u for u in self.resources if not u.startswith("urn:structgen:"))[:8])
            raise SchemaError(f"cannot resolve $ref to {uri!r}: not in the schema, not in `registry`"
                              + (f" (known: {known})" if known else ""), where=where)
        self.add_document(uri, doc)
        r = self.resources.get(uri)
        if r is None:  # document declares another $id: register under the requested URI too
            node = self.by_loc[(uri, "")]
            r = self.resources[uri] = _Resource(uri, node)
        return r

    def resolve(self, node: Node, ref: str, where: str) -> Node:
        if not isinstance(ref, str):
            raise SchemaError(f"$ref must be a string, got {ref!r}", where=where)
        full = resolve_uri(node.base, ref)
        uri, frag = _defrag(full)
        res = self._resource(uri, where)
        return self._fragment(res, frag, full, where)

    def _fragment(self, res: _Resource, frag: str, full: str, where: str) -> Node:
        frag = unquote(frag)
        if not frag:
            return res.node
        if frag.startswith("/"):
            tokens = [t.replace("~1", "/").replace("~0", "~") for t in frag[1:].split("/")]
            cur = res.node
            value = cur.schema
            path = []
            for t in tokens:
                if isinstance(value, dict) and t in value:
                    value = value[t]
                elif isinstance(value, list) and t.isdigit() and int(t) < len(value):
                    t = int(t)
                    value = value[t]
                else:
                    raise SchemaError(f"cannot resolve $ref {full!r}: no {frag!r} in the target", where=where)
                path.append(t)
            return self.child(cur, *path) if path else cur
        hit = res.anchors.get(frag)
        if hit is None:
            raise SchemaError(f"cannot resolve $ref {full!r}: no anchor {frag!r}", where=where)
        return hit

    def resource_of(self, node: Node) -> _Resource:
        return self.resources[node.resource]

    def dynamic_target(self, node: Node, ref: str, scope: tuple, where: str) -> Node:
        """``$dynamicRef`` (2020-12): static resolution, then the outermost resource
        in the dynamic ``scope`` declaring the same ``$dynamicAnchor``."""
        target = self.resolve(node, ref, where)
        frag = _defrag(resolve_uri(node.base, ref))[1]
        if not frag or frag.startswith("/"):
            return target
        tres = self.resources.get(target.resource)
        if tres is None or tres.dynamic_anchors.get(frag) is not target:
            return target  # initial target has no matching $dynamicAnchor: plain $ref
        for uri in scope:
            r = self.resources.get(uri)
            if r is not None and frag in r.dynamic_anchors:
                return r.dynamic_anchors[frag]
        return target

    def recursive_target(self, node: Node, ref: str, scope: tuple, where: str) -> Node:
        """``$recursiveRef`` (2019-09)."""
        target = self.resolve(node, ref, where)
        tres = self.resources.get(target.resource)
        if tres is None or not tres.recursive_anchor or target is not tres.node:
            return target
        for uri in scope:
            r = self.resources.get(uri)
            if r is not None and r.recursive_anchor:
                return r.node
        return target


def _metaschema(uri: str):
    try:
        from jsonschema_specifications import REGISTRY  # shipped with jsonschema; offline
    except ImportError:  # pragma: no cover
        return None
    for cand in (uri, uri.rstrip("#"), uri + "#"):
        try:
            return REGISTRY.contents(cand)
        except Exception:  # noqa: BLE001 - the library raises its own lookup errors
            continue
    return None
