"""The FactSheet JSON Schema as a Markdown reference, one table per object.

``factsheet schema --markdown`` prints :func:`schema_markdown` of the shipped schema;
``docs/schema.md`` is that output (``make docs`` regenerates it, a test keeps it in step).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

__all__ = ["schema_markdown"]

_DEF_PREFIX = "#/$defs/"
_ROOT_TITLE = "FactSheet (top level)"
_VALIDATING = "Validating a FactSheet"
_READING = "Reading the tables"
_CONTENTS = "Contents"


@dataclass
class _Section:
    """One object of the schema, rendered as a heading and a table."""

    title: str  # heading text, without Markdown
    node: dict
    depth: int  # 0: top level or a $defs entry; 1+: nested inline objects
    anchor: str = ""
    used_by: list[str] = field(default_factory=list)


def schema_markdown(schema: dict) -> str:
    """Render a FactSheet JSON Schema as GitHub-flavoured Markdown, field by field.

    Parameters
    ----------
    schema : dict
        A JSON Schema (draft 2020-12) whose root is an object, as returned by
        :func:`factsheet.document.load_schema`. Each property's ``description`` and
        ``x-unit`` annotations fill the Description and Unit columns.

    Returns
    -------
    str
        Markdown: a title and introduction (schema version, how to validate), a table of
        contents, then one section per object -- the top level first, then each ``$defs``
        entry in alphabetical order, each followed by its inline nested objects named by
        their path (``robustness.settings``, ``bias.per_class[]`` for array items). Every
        section has a table ``Field | Type | Required | Unit | Description``; ``$ref`` types
        link to the referenced definition's section. Deterministic; ends in one newline.

    Notes
    -----
    Anchors follow GitHub's rules (lowercase, punctuation dropped, spaces to ``-``, a
    repeated heading gets ``-1``, ``-2`` ...). A field listed with no validation keyword
    (type, ``$ref``, enum, ...) shows the type ``unchecked``: documented, but not
    constrained by the schema (the legend explains ``unchecked`` only when some field shows it).
    """
    version = _version(schema)
    sections = _collect_sections(schema)
    slugs: dict[str, int] = {}
    title = f"FactSheet JSON Schema {version}"
    for heading in (title, _VALIDATING, _READING, _CONTENTS):  # the headings before the sections, in order
        _anchor(heading, slugs)
    for s in sections:
        s.anchor = _anchor(s.title, slugs)
    ctx = _Context(schema=schema)
    for s in sections:
        ctx.by_node[id(s.node)] = s
    for s in sections:
        for name, sub, _required in _fields(s.node):
            key = "*" if name is None else name
            ctx.note_refs(sub, where=key if s.title == _ROOT_TITLE else f"{s.title}.{key}", anchor=s.anchor)

    body: list[str] = []
    for s in sections:
        body += _render_section(s, ctx)
    out: list[str] = []
    out += _intro(schema, title=title, version=version, unchecked=ctx.unchecked)
    out += [f"## {_CONTENTS}", ""]
    for s in sections:
        out.append(f"{'  ' * s.depth}- [{_code_title(s)}](#{s.anchor})")
    out.append("")
    out += body
    text = "\n".join(out)
    return text.rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def _collect_sections(schema: dict) -> list[_Section]:
    sections = [_Section(title=_ROOT_TITLE, node=schema, depth=0)]
    sections += _nested(schema, prefix="", depth=1)
    for name in sorted(schema.get("$defs", {})):
        node = schema["$defs"][name]
        sections.append(_Section(title=name, node=node, depth=0))
        sections += _nested(node, prefix=f"{name}.", depth=1)
    return sections


def _nested(node: dict, *, prefix: str, depth: int) -> list[_Section]:
    """Inline object subschemas under ``node``'s fields, depth first, in field order."""
    out = []
    for name, sub, _required in _fields(node):
        if name is None:  # the additionalProperties row
            continue
        for path, inner in _inline_objects(sub, f"{prefix}{name}"):
            out.append(_Section(title=path, node=inner, depth=depth))
            out += _nested(inner, prefix=f"{path}.", depth=depth + 1)
    return out


def _inline_objects(sub: dict, path: str) -> list[tuple[str, dict]]:
    """(path, subschema) of the inline objects a field holds: itself, or its array items."""
    if _is_object(sub):
        return [(path, sub)]
    items = sub.get("items")
    if isinstance(items, dict) and _is_object(items):
        return [(f"{path}[]", items)]
    return []


def _is_object(node: dict) -> bool:
    """An inline object with fields of its own (not a ``$ref``, not a bare map)."""
    return isinstance(node, dict) and "$ref" not in node and bool(node.get("properties") or node.get("required"))


def _fields(node: dict) -> list[tuple[str | None, dict, bool]]:
    """``(name, subschema, required)`` per field: listed properties, then required-only names,
    then ``(None, schema, False)`` for an ``additionalProperties`` schema."""
    props = node.get("properties") or {}
    required = list(node.get("required") or [])
    out = [(name, sub, name in required) for name, sub in props.items()]
    out += [(name, {}, True) for name in required if name not in props]
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out.append((None, extra, False))
    return out


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------

@dataclass
class _Context:
    schema: dict
    by_node: dict[int, _Section] = field(default_factory=dict)
    unchecked: bool = False  # some field has no validation keyword (its type reads "unchecked")

    def def_section(self, ref: str) -> _Section | None:
        if not ref.startswith(_DEF_PREFIX):
            return None
        name = ref[len(_DEF_PREFIX):]
        node = self.schema.get("$defs", {}).get(name)
        if node is None:
            return None
        return self.by_node.get(id(node))

    def note_refs(self, node, *, where: str, anchor: str) -> None:
        """Record, on each referenced definition, the field that references it."""
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target = self.def_section(ref)
                link = f"[`{where}`](#{anchor})"
                if target is not None and link not in target.used_by:
                    target.used_by.append(link)
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), dict) and id(node[key]) not in self.by_node:
                    self.note_refs(node[key], where=where, anchor=anchor)
            for key in ("oneOf", "anyOf", "allOf"):
                for sub in node.get(key) or []:
                    self.note_refs(sub, where=where, anchor=anchor)


def _version(schema: dict) -> str:
    const = ((schema.get("properties") or {}).get("schema_version") or {}).get("const")
    if isinstance(const, str):
        return const
    return str(schema.get("$id", "")).rsplit(":", 1)[-1] or "unversioned"


def _intro(schema: dict, *, title: str, version: str, unchecked: bool = False) -> list[str]:
    file_name = f"factsheet-{version}.schema.json"
    draft = schema.get("$schema", "")
    return [
        f"# {title}",
        "",
        "<!-- Generated by `factsheet schema --markdown` (`make docs`); do not edit by hand. -->",
        "",
        "This page documents, field by field, the JSON document `factsheet.json` that `factsheet run` writes: "
        "one section per object, each field with its type, whether it is required, its unit and what it is "
        "(how it is computed).",
        "",
        f"Every `factsheet.json` is checked against this schema before it is written. The schema ships in the "
        f"package as `factsheet/schema/{file_name}` (JSON Schema `{draft}`, `$id` `{schema.get('$id', '')}`); "
        f"`factsheet schema` prints it as JSON and `factsheet schema --markdown` prints this page.",
        "",
        f"## {_VALIDATING}",
        "",
        "```sh",
        "factsheet schema > factsheet.schema.json     # the JSON Schema itself",
        "factsheet schema --markdown > docs/schema.md  # this page (make docs)",
        "```",
        "",
        "```python",
        "import json",
        "",
        "import jsonschema",
        "",
        "from factsheet.document import load_schema",
        "",
        "with open(\"factsheet.json\", encoding=\"utf-8\") as f:",
        "    jsonschema.Draft202012Validator(load_schema()).validate(json.load(f))",
        "```",
        "",
        "Any JSON Schema 2020-12 validator works on the printed schema. The `x-unit` keyword that carries each "
        "number's unit is an annotation: validators ignore it.",
        "",
        f"## {_READING}",
        "",
        "- **Type**: a link is a definition (`$defs`) documented in its own section; `or null` marks a nullable "
        "field; `array of X` a list; `map of string to X` an object with free keys"
        + ("; `unchecked` a field the schema documents but does not constrain." if unchecked else "."),
        "- **Required**: `yes` when the field must be present (it may still be null where the type allows).",
        "- **Unit**: the unit of a number (`x-unit`). Distances of the attack are in model input units (float "
        "waveform, full scale 1.0); `x 32768` gives 16-bit PCM units.",
        "- A number that could not be computed, or is infinite, is `null` (JSON has no NaN or infinity).",
        "",
    ]


def _render_section(s: _Section, ctx: _Context) -> list[str]:
    level = "#" * min(2 + s.depth, 6)
    out = [f"{level} {_code_title(s)}", ""]
    if s.node.get("description"):
        out += [_text(s.node["description"]), ""]
    own_type = _type_text(s.node, ctx, link_self=False)
    out += [f"Type: {own_type}.", ""]
    if s.used_by and _is_object(s.node):
        out += ["Used by: " + ", ".join(s.used_by) + ".", ""]
    elif s.used_by:
        out += [f"Used by {len(s.used_by)} fields.", ""]
    fields = _fields(s.node)
    if fields:
        out += ["| Field | Type | Required | Unit | Description |", "|---|---|---|---|---|"]
        named = any(name is not None for name, _sub, _req in fields)
        for name, sub, required in fields:
            label = f"`{name}`" if name is not None else ("*(any other key)*" if named else "*(any key)*")
            cells = [label, _type_text(sub, ctx), "yes" if required else "no", _text(sub.get("x-unit", "")),
                     _description(sub, ctx)]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    extra = s.node.get("additionalProperties")
    if fields or "properties" in s.node or "required" in s.node:
        if extra is False:
            out += ["No other fields are allowed.", ""]
        elif extra is None or extra is True:
            out += ["Other fields are allowed and not checked.", ""]
    return out


def _code_title(s: _Section) -> str:
    return s.title if s.title == _ROOT_TITLE else f"`{s.title}`"


def _description(sub: dict, ctx: _Context) -> str:
    text = _text(sub.get("description", ""))
    if not text and isinstance(sub.get("$ref"), str):
        target = ctx.def_section(sub["$ref"])
        if target is not None:
            text = f"See [`{target.title}`](#{target.anchor})."
    return text


def _type_text(node: dict, ctx: _Context, *, link_self: bool = True) -> str:
    """The Type cell of a subschema."""
    own = ctx.by_node.get(id(node)) if link_self else None
    parts: list[str] = []
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = ctx.def_section(ref)
        if target is None:
            parts.append(f"`{ref}`")
        else:
            link = f"[{target.title}](#{target.anchor})"
            if not _is_object(target.node) and "type" in target.node:
                link += f" ({_type_text(target.node, ctx, link_self=False)})"
            parts.append(link)
    types = node.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        parts.append(" or ".join(_one_type(t, node, ctx, own) for t in names))
    for key in ("oneOf", "anyOf"):
        if node.get(key):
            parts.append(" or ".join(_type_text(sub, ctx) for sub in node[key]))
    if "const" in node:
        parts.append(f"{_json(node['const'])} (constant)")
    if "enum" in node:
        parts.append("one of " + ", ".join(_json(v) for v in node["enum"]))
    if not parts:
        ctx.unchecked = True
        text = "unchecked"
        if own is not None:
            text += f" ([object](#{own.anchor}))"
        elif isinstance(node.get("items"), dict) and id(node["items"]) in ctx.by_node:
            text += f" (array of [object](#{ctx.by_node[id(node['items'])].anchor}))"
        return text
    text = ", ".join(parts)
    constraints = _constraints(node)
    return f"{text}, {constraints}" if constraints else text


def _one_type(t: str, node: dict, ctx: _Context, own: _Section | None) -> str:
    if t == "array":
        items = node.get("items")
        if isinstance(items, dict):
            return f"array of {_type_text(items, ctx) if items else 'any'}"
        return "array"
    if t == "object":
        if own is not None:
            return f"[object](#{own.anchor})"
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and not node.get("properties"):
            return f"map of string to {_type_text(extra, ctx)}"
        return "object"
    return t


def _constraints(node: dict) -> str:
    out = []
    for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in node:
            out.append(f"{op} {json.dumps(node[key])}")
    if "pattern" in node:
        out.append(f"pattern `{node['pattern']}`")
    if "minItems" in node:
        out.append(f"at least {node['minItems']} items")
    if "maxItems" in node:
        out.append(f"at most {node['maxItems']} items")
    return ", ".join(out)


def _json(value) -> str:
    return f"`{json.dumps(value)}`"


def _text(s: str) -> str:
    """Free text for Markdown: one line; backslashes, ``*``, ``<`` and underscores that could
    start or end emphasis (not inside a word) escaped."""
    s = " ".join(str(s).split())
    s = s.replace("\\", "\\\\").replace("*", "\\*").replace("<", "\\<")
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", s)


def _cell(s: str) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(s.split()).replace("|", "\\|")


def _anchor(heading: str, seen: dict[str, int]) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to '-', repeats numbered."""
    slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
    n = seen.get(slug, 0)
    seen[slug] = n + 1
    return slug if n == 0 else f"{slug}-{n}"
