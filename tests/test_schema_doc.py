"""The published schema reference: every field documented (description, unit), docs/schema.md in
step with the schema, ``factsheet schema --markdown`` printing it, and the Markdown renderer itself."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from factsheet.document import load_schema
from factsheet.schema_doc import schema_markdown

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "schema.md"
NUM_REF = "#/$defs/num"


def _fields(node, path="#"):
    """Every field subschema of ``node``, recursively: ``(path, subschema)`` for each property and each
    ``additionalProperties`` schema (the values of a map), through $defs, items and oneOf/anyOf/allOf."""
    if not isinstance(node, dict):
        return
    for name, sub in (node.get("properties") or {}).items():
        yield f"{path}/properties/{name}", sub
        yield from _fields(sub, f"{path}/properties/{name}")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield f"{path}/additionalProperties", extra
        yield from _fields(extra, f"{path}/additionalProperties")
    if isinstance(node.get("items"), dict):
        yield from _fields(node["items"], f"{path}/items")
    for key in ("oneOf", "anyOf", "allOf"):
        for i, sub in enumerate(node.get(key) or []):
            yield from _fields(sub, f"{path}/{key}/{i}")
    for name, sub in (node.get("$defs") or {}).items():
        yield from _fields(sub, f"#/$defs/{name}")


def _is_numeric(sub: dict) -> bool:
    """A number field: type number / integer, a $ref to num, or an array of such."""
    types = sub.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "number" in types or "integer" in types or sub.get("$ref") == NUM_REF:
        return True
    return "array" in types and isinstance(sub.get("items"), dict) and _is_numeric(sub["items"])


@pytest.fixture(scope="module")
def schema() -> dict:
    return load_schema()


REGENERATE = "regenerate it with `make docs` (or `factsheet schema --markdown > docs/schema.md`)"


def _first_difference(actual: bytes, expected: bytes) -> str:
    a, e = actual.decode("utf-8", "replace").split("\n"), expected.decode("utf-8", "replace").split("\n")
    for i, (x, y) in enumerate(zip(a, e), start=1):
        if x != y:
            j = next((k for k, (c, d) in enumerate(zip(x, y)) if c != d), min(len(x), len(y)))
            lo = max(0, j - 40)
            return f"line {i}, column {j + 1}: {x[lo:j + 60]!r} instead of {y[lo:j + 60]!r}"
    return f"{len(a)} lines instead of {len(e)}"


def test_docs_schema_md_is_generated_from_the_schema(schema):
    assert DOC.is_file(), f"docs/schema.md is missing: {REGENERATE}"
    actual, expected = DOC.read_bytes(), schema_markdown(schema).encode("utf-8")
    if actual != expected:
        pytest.fail(f"docs/schema.md is out of date with factsheet/schema/ ({_first_difference(actual, expected)}): "
                    f"{REGENERATE}", pytrace=False)


def test_every_field_has_a_one_line_description(schema):
    fields = list(_fields(schema))
    assert len(fields) > 250  # the walk reaches nested objects, items and $defs
    bad = [path for path, sub in fields
           if not isinstance(sub.get("description"), str) or not sub["description"].strip()
           or "\n" in sub["description"] or "\r" in sub["description"]
           or sub["description"] != sub["description"].strip()]
    assert not bad, f"fields without a one-line description: {bad}"


def test_every_definition_has_a_description(schema):
    bad = [name for name, sub in schema["$defs"].items() if not str(sub.get("description", "")).strip()]
    assert not bad and schema.get("description")


def test_every_numeric_field_has_a_unit(schema):
    numeric = [(path, sub) for path, sub in _fields(schema) if _is_numeric(sub)]
    assert len(numeric) > 60
    bad = [path for path, sub in numeric if not isinstance(sub.get("x-unit"), str) or not sub["x-unit"].strip()
           or "\n" in sub["x-unit"]]
    assert not bad, f"numeric fields without an x-unit: {bad}"
    units = {path.rsplit("/", 1)[-1]: sub["x-unit"] for path, sub in numeric}
    assert "16-bit PCM" in units["value_int16"] and units["snr_db"] == "dB" and units["sample_rate"] == "Hz"


VALIDATION_KEYWORDS = ("type", "$ref", "enum", "const", "oneOf", "anyOf", "allOf")


def _untyped(schema: dict) -> list[str]:
    """Paths of the fields (and array item schemas) that carry no validation keyword: documented only."""
    out = []

    def check(path, sub):
        if not any(k in sub for k in VALIDATION_KEYWORDS):
            out.append(path)
        if isinstance(sub.get("items"), dict):
            check(f"{path}/items", sub["items"])

    for path, sub in _fields(schema):
        check(path, sub)
    return out


def _type_cells(md: str) -> list[str]:
    """Every Type of the reference: the second cell of each field row and each section's 'Type:' line."""
    cells = [re.split(r"(?<!\\)\|", line)[2].strip() for line in md.splitlines()
             if line.startswith("| `") or line.startswith("| *(")]
    return cells + [line[len("Type: "):] for line in md.splitlines() if line.startswith("Type: ")]


def test_every_field_has_a_type(schema):
    """No field is documented without being checked: each has a type, $ref, enum or const, so the reference
    never shows the type `unchecked`."""
    assert not _untyped(schema), f"fields without a type (shown as `unchecked` in docs/schema.md): {_untyped(schema)}"
    md = schema_markdown(schema)
    cells = _type_cells(md)
    assert len(cells) > 250 and not [c for c in cells if "unchecked" in c]
    assert "`unchecked`" not in md  # the legend does not explain a type no field has
    # the check catches an untyped field, an untyped array item and a bare nested object
    broken = copy.deepcopy(schema)
    settings = broken["$defs"]["bias"]["properties"]["settings"]
    del settings["properties"]["seed"]["type"]
    del broken["$defs"]["bias"]["properties"]["per_category"]["items"]["type"]
    del settings["type"]
    assert _untyped(broken) == ["#/$defs/bias/properties/settings",
                                "#/$defs/bias/properties/settings/properties/seed",
                                "#/$defs/bias/properties/per_category/items"]
    md = schema_markdown(broken)
    assert sum("unchecked" in c for c in _type_cells(md)) >= 3 and "`unchecked` a field" in md


def test_schema_is_valid_draft_2020_12(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_unit_annotation_does_not_change_validation(schema):
    """x-unit is an annotation: a document that breaks a unit-annotated field still fails, one that keeps
    to the types still passes."""
    sub = {"$defs": schema["$defs"], **schema["$defs"]["norm_block"]["properties"]["median_queries"]}
    validator = jsonschema.Draft202012Validator(sub)
    assert validator.is_valid(812.5) and validator.is_valid(None) and not validator.is_valid("812")


def test_cli_prints_the_markdown_reference():
    proc = subprocess.run([sys.executable, "-m", "factsheet", "schema", "--markdown"], capture_output=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    if proc.stdout != DOC.read_bytes():
        pytest.fail(f"`factsheet schema --markdown` differs from docs/schema.md "
                    f"({_first_difference(DOC.read_bytes(), proc.stdout)}): {REGENERATE}", pytrace=False)


def test_cli_still_prints_the_json_schema(schema):
    proc = subprocess.run([sys.executable, "-m", "factsheet", "schema"], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0 and json.loads(proc.stdout) == schema


# --- the renderer on a small hand-written schema ---------------------------------------------------

TINY = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:test:tiny:9.9.9",
    "title": "Tiny",
    "description": "A tiny schema.",
    "type": "object",
    "required": ["schema_version", "thing", "score", "model"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": "9.9.9", "description": "Version."},
        "thing": {"$ref": "#/$defs/thing_block", "description": "A thing."},
        "score": {"type": ["number", "null"], "x-unit": "dB", "description": "Loudness a | b,\nin two lines."},
        "mode": {"enum": ["fast", "exact"], "description": "Mode."},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags."},
        "model": {"type": "object", "description": "Inline object.", "required": ["n"],
                  "properties": {"n": {"type": "integer", "minimum": 0, "x-unit": "clips",
                                       "description": "Count of *starred* things."}}},
        "other": {"$ref": "#/$defs/model", "description": "Same heading as the inline object."},
        "rows": {"type": "array", "description": "Rows.",
                 "items": {"type": "object", "properties": {"v": {"$ref": "#/$defs/num", "x-unit": "s",
                                                                  "description": "V."}}}},
        "timings": {"type": "object", "additionalProperties": {"type": "number", "x-unit": "seconds",
                                                                "description": "Stage time."},
                    "description": "Per stage."},
    },
    "$defs": {
        "thing_block": {"type": ["object", "null"], "description": "Block.", "required": ["x"],
                        "properties": {"x": {"$ref": "#/$defs/num", "x-unit": "s", "description": "X."}},
                        "additionalProperties": False},
        "num": {"type": ["number", "null"], "description": "A number or null."},
        "model": {"type": "object", "description": "A def named like the inline object.",
                  "properties": {"y": {"type": "string", "description": "Y."}}},
    },
}


def _row(md: str, field: str) -> list[str]:
    """The cells of the first table row of ``field`` (split on unescaped pipes)."""
    line = next(line for line in md.splitlines() if line.startswith(f"| `{field}` |"))
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_markdown_of_a_tiny_schema():
    md = schema_markdown(copy.deepcopy(TINY))
    assert md.startswith("# FactSheet JSON Schema 9.9.9\n")
    assert md.endswith("\n") and not md.endswith("\n\n")
    assert md == schema_markdown(copy.deepcopy(TINY))  # deterministic
    assert "`factsheet schema`" in md and "Draft202012Validator" in md

    # $ref: a link to the definition's section; a scalar definition also shows its type
    assert _row(md, "thing") == ["`thing`", "[thing_block](#thing_block)", "yes", "", "A thing."]
    assert "\n## `thing_block`\n" in md
    assert _row(md, "x") == ["`x`", "[num](#num) (number or null)", "yes", "s", "X."]
    # nullable type, unit, pipe escaped, one line
    assert _row(md, "score") == ["`score`", "number or null", "yes", "dB", r"Loudness a \| b, in two lines."]
    # enum, not required
    assert _row(md, "mode") == ["`mode`", 'one of `"fast"`, `"exact"`', "no", "", "Mode."]
    assert _row(md, "schema_version")[1] == '`"9.9.9"` (constant)'
    assert _row(md, "tags")[1] == "array of string"
    assert _row(md, "timings")[1] == "map of string to number"
    # inline objects get their own sections, named by path; emphasis characters escaped
    assert _row(md, "model")[1] == "[object](#model)" and "\n### `model`\n" in md
    assert _row(md, "n") == ["`n`", "integer, >= 0", "yes", "clips", r"Count of \*starred\* things."]
    assert _row(md, "rows")[1] == "array of [object](#rows)" and "\n### `rows[]`\n" in md
    # GitHub numbers a repeated heading: the $defs entry `model` comes after the inline `model`
    assert _row(md, "other")[1] == "[model](#model-1)"
    # a nullable $defs object; "no other fields" stated
    section = md.split("\n## `thing_block`\n", 1)[1].split("\n## ", 1)[0]
    assert "Type: object or null." in section and "No other fields are allowed." in section
    # sections: top level first, then $defs alphabetically
    heads = [line for line in md.splitlines() if line.startswith("## `") or line == "## FactSheet (top level)"]
    assert heads == ["## FactSheet (top level)", "## `model`", "## `num`", "## `thing_block`"]
    # every table row is one line with five cells
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| Field")]
    assert rows and all(len(re.split(r"(?<!\\)\|", line)) == 7 for line in rows)


def test_real_markdown_links_resolve(schema):
    """Every in-page link of the real reference points at a heading's GitHub anchor."""
    md = schema_markdown(schema)
    seen: dict[str, int] = {}
    anchors = set()
    fenced = False
    for line in md.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("#") and not fenced:
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    links = set(re.findall(r"\]\(#([^)]+)\)", md))
    assert links and not links - anchors, f"dangling links: {sorted(links - anchors)}"
    for name in ("robustness.settings", "percentile_row.fit", "bias.disparities[]", "provenance"):
        assert f"`{name}`" in md
