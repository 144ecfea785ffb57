"""One vocabulary: relation names and uids are spelled only in ``kgschema`` (issue #15.1).

Walks every module of graph/, nlp/, recommender/ and kms/ (migrations excepted: they are
history) and fails on a string literal that is a relation name, or an f-string that builds a
uid (``f"product:{x}"``), outside kgschema. Cypher text may name relationship types inside a
query string; a bare literal cannot.
"""
from __future__ import annotations

import ast
from pathlib import Path

import kgschema

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("graph", "nlp", "recommender", "kms")
RELATIONS = set(kgschema.RELATIONSHIP_TYPES) | {kgschema.IN_PARENT_CATEGORY}
UID_KINDS = {kgschema.PRODUCT_KIND, kgschema.USER_KIND, kgschema.BRAND_KIND, kgschema.CATEGORY_KIND,
             kgschema.EXTERNAL_KIND, "entity"} | {t.lower() for t in kgschema.ENTITY_TYPES}


def offences(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                kind, sep, rest = head.value.partition(":")
                if sep and not rest and kind in UID_KINDS and len(node.values) > 1:
                    out.append((node.lineno, f"uid f-string {head.value!r}"))
            if (len(node.values) > 2 and isinstance(head, ast.FormattedValue) and isinstance(head.value, ast.Call)
                    and isinstance(head.value.func, ast.Attribute) and head.value.func.attr == "lower"
                    and isinstance(node.values[1], ast.Constant) and node.values[1].value == ":"):
                out.append((node.lineno, "uid f-string '{kind.lower()}:'"))  # f"{type.lower()}:{key}"
            for part in node.values:  # the literal parts of an f-string are Constants too: skip them
                part._in_fstring = True
        elif isinstance(node, ast.Constant) and node.value in RELATIONS and not getattr(node, "_in_fstring", False):
            out.append((node.lineno, f"relation literal {node.value!r}"))
    return out


def _modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_the_checker_catches_both_kinds():
    bad = ('rel = "HAS_BRAND"\nuid = f"product:{x}"\nq = f"MATCH (a)-[:{HAS_BRAND}]->(b)"\nok = "HAS_BRANDS"\n'
           'uid = f"{kind.lower()}:{key}"\naddr = f"{host}:{port}"\n')
    found = offences(bad)
    assert [line for line, _ in found] == [1, 2, 5]


def test_no_relation_literals_or_uid_fstrings_outside_kgschema():
    found = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in _modules()
             for line, what in offences(path.read_text())]
    assert not found, "spell these with kgschema:\n" + "\n".join(found)


def test_uids_round_trip():
    assert kgschema.parse_uid(kgschema.product_uid(42)) == ("product", "42")
    assert kgschema.label_for_uid(kgschema.entity_uid("MATERIAL", "steel")) == "Entity"
    assert kgschema.label_for_uid(kgschema.category_uid(["a", "b"])) == "Category"
    assert kgschema.category_chain("a/b/c", ["A", "B", "C"]) == [
        ("category:a", "A"), ("category:a/b", "B"), ("category:a/b/c", "C")]
    assert kgschema.category_ancestors("category:a/b/c") == ["category:a", "category:a/b"]
    assert kgschema.category_ancestors("brand:a/b") == []
