"""Plain data types crossing the nlp package boundary (no spaCy objects leak out)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from kgschema import entity_uid


@dataclass
class ProductText:
    uid: str
    title: str
    description: str = ""
    brand: str = ""
    categories: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fact:
    """One candidate edge ``product -[relation]-> object`` with its evidence.

    ``start``/``end`` are character offsets into the product's ``field`` value, so
    ``text == getattr(product, field)[start:end]`` (categories are joined with ",").
    """

    relation: str
    object_type: str
    object_key: str
    object_name: str
    value: Optional[float] = None
    unit: Optional[str] = None
    field: str = "title"
    start: int = 0
    end: int = 0
    text: str = ""
    extractor: str = ""
    extractor_version: str = ""
    confidence: float = 1.0
    status: str = "auto"  # "candidate": below its relation's threshold (nlp.acceptance)
    attribute: Optional[str] = None  # HAS_ATTRIBUTE facts of a category schema: the attribute name

    @property
    def object_uid(self) -> str:
        return entity_uid(self.object_type, self.object_key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExtractionResult:
    product_uid: Any
    facts: list[Fact] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None
