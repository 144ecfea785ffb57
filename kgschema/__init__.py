"""The knowledge graph's vocabulary: relations, entity types, node kinds, uids and the category chain.

One Django-free, dependency-free module that ``graph/``, ``nlp/``, ``recommender/`` and ``kms/``
all import, so the extractor, the graph store, the trainer and the API cannot name the same
thing two ways. No other module writes a relation name as a string literal or builds a uid with
an f-string (``tests/test_vocabulary.py`` walks the source and fails if one does).

Uids carry their kind as a prefix (``product:42``, ``user:7``, ``brand:stanley``,
``category:industrial-scientific/fasteners/staples``, ``material:steel``) so a node's label
follows from its uid alone; keys are normalised by ``nlp.normalize.entity_key`` before they get
here (this module does not normalise text).
"""
from __future__ import annotations

# --- relations ---------------------------------------------------------------------------------
HAS_BRAND = "HAS_BRAND"
IN_CATEGORY = "IN_CATEGORY"
SUBCATEGORY_OF = "SUBCATEGORY_OF"
MADE_OF = "MADE_OF"
HAS_COLOR = "HAS_COLOR"
HAS_ATTRIBUTE = "HAS_ATTRIBUTE"
COMPATIBLE_WITH = "COMPATIBLE_WITH"
USED_FOR = "USED_FOR"
HAS_MODEL_NUMBER = "HAS_MODEL_NUMBER"
IS_PRODUCT_TYPE = "IS_PRODUCT_TYPE"
INTERACTED = "INTERACTED"
RELATED_TO = "RELATED_TO"  # imported external knowledge (typed by the edge's `relation` property)
# derived for the models, never stored: an item to every ancestor of its category
IN_PARENT_CATEGORY = "IN_PARENT_CATEGORY"

RELATIONSHIP_TYPES = (HAS_BRAND, IN_CATEGORY, SUBCATEGORY_OF, MADE_OF, HAS_COLOR, HAS_ATTRIBUTE, COMPATIBLE_WITH,
                      USED_FOR, HAS_MODEL_NUMBER, IS_PRODUCT_TYPE, INTERACTED, RELATED_TO)
# what a fact (extracted, structured or curated) can say about a product
FACT_RELATIONS = tuple(r for r in RELATIONSHIP_TYPES if r not in {INTERACTED, SUBCATEGORY_OF, RELATED_TO})
CATEGORY_RELATIONS = (IN_CATEGORY, IN_PARENT_CATEGORY)

# --- entity types (a fact's object_type; the Entity node's `type`) ------------------------------
BRAND = "BRAND"
CATEGORY = "CATEGORY"
MATERIAL = "MATERIAL"
COLOR = "COLOR"
MEASURE = "MEASURE"
MODEL_NUMBER = "MODEL_NUMBER"
PRODUCT_TYPE = "PRODUCT_TYPE"
USE = "USE"
ATTRIBUTE_VALUE = "ATTRIBUTE_VALUE"
ENTITY_TYPES = (BRAND, CATEGORY, MATERIAL, COLOR, MEASURE, MODEL_NUMBER, PRODUCT_TYPE, USE, ATTRIBUTE_VALUE)

# --- node kinds and labels ---------------------------------------------------------------------
PRODUCT_KIND = "product"
USER_KIND = "user"
BRAND_KIND = "brand"
CATEGORY_KIND = "category"
EXTERNAL_KIND = "external"  # imported knowledge not linked to a product
NODE_LABELS = ("Product", "User", "Brand", "Category", "Entity")
# uid prefix -> label; any other prefix is an Entity of that type (material:, color:, …)
PREFIX_LABELS = {PRODUCT_KIND: "Product", USER_KIND: "User", BRAND_KIND: "Brand", CATEGORY_KIND: "Category"}

CATEGORY_SEPARATOR = "/"


# --- uids --------------------------------------------------------------------------------------
def make_uid(kind: str, key) -> str:
    return f"{kind.lower()}:{key}"


def parse_uid(uid: str) -> tuple[str, str]:
    """``"brand:stanley"`` -> ``("brand", "stanley")``; ValueError without a kind prefix."""
    kind, sep, key = str(uid).partition(":")
    if not sep:
        raise ValueError(f"uid without a kind prefix: {uid!r}")
    return kind, key


def uid_kind(uid: str) -> str:
    return parse_uid(uid)[0]


def uid_key(uid: str) -> str:
    """The key after the kind prefix (a uid without one is returned unchanged)."""
    kind, sep, key = str(uid).partition(":")
    return key if sep else str(uid)


def label_for_uid(uid: str) -> str:
    return PREFIX_LABELS.get(parse_uid(uid)[0], "Entity")


def product_uid(external_id) -> str:
    return make_uid(PRODUCT_KIND, str(external_id))


def user_uid(external_id) -> str:
    return make_uid(USER_KIND, str(external_id))


def entity_uid(entity_type: str, key: str) -> str:
    """The uid of an extracted entity: ``entity_uid("MATERIAL", "steel") == "material:steel"``."""
    return make_uid(entity_type, key)


def brand_uid(key: str) -> str:
    return make_uid(BRAND_KIND, key)


def external_uid(key: str) -> str:
    return make_uid(EXTERNAL_KIND, key)


def is_product_uid(uid: str) -> bool:
    return str(uid).startswith(PRODUCT_KIND + ":")


def product_id(uid: str) -> str:
    """The external id in a product uid."""
    kind, key = parse_uid(uid)
    if kind != PRODUCT_KIND:
        raise ValueError(f"not a product uid: {uid!r}")
    return key


# --- the category chain ------------------------------------------------------------------------
def category_uid(key: str | list[str]) -> str:
    """``category_uid("a/b")`` or ``category_uid(["a", "b"])`` (normalised parts) -> ``"category:a/b"``."""
    if not isinstance(key, str):
        key = CATEGORY_SEPARATOR.join(key)
    return make_uid(CATEGORY_KIND, key)


def category_chain(key: str, name_parts: list[str] | None = None) -> list[tuple[str, str]]:
    """(uid, display name) for every level of a category key ``a/b/c``, root first: the nodes
    joined by SUBCATEGORY_OF. Names default to the key's parts when ``name_parts`` do not match."""
    parts = key.split(CATEGORY_SEPARATOR)
    names = name_parts if name_parts and len(name_parts) == len(parts) else parts
    return [(category_uid(parts[:n]), names[n - 1]) for n in range(1, len(parts) + 1)]


def category_ancestors(uid: str) -> list[str]:
    """``category:a/b/c`` -> ``[category:a, category:a/b]`` (its SUBCATEGORY_OF chain, root first)."""
    kind, sep, key = str(uid).partition(":")
    if kind != CATEGORY_KIND or not sep:
        return []
    return [ancestor for ancestor, _ in category_chain(key)[:-1]]


def category_leaf_name(uid: str) -> str:
    """The last part of a category uid's key (``category:a/b`` -> ``b``)."""
    return uid_key(uid).rsplit(CATEGORY_SEPARATOR, 1)[-1]
