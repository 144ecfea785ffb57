"""``extract``: products in, one ExtractionResult per product out, never raising on bad input."""
from __future__ import annotations

from itertools import islice
from typing import Any, Iterable, Iterator, Union

from spacy.language import Language

from .pipeline import EXTRACTOR_VERSION, brand_policy, pipeline_acceptor, pipeline_kb
from .attributes import attribute_facts
from .relations import FactBuilder
from .types import ExtractionResult, ProductText

MAX_FIELD_CHARS = 100_000
# Share of characters that may be control/replacement characters before text counts as binary.
MAX_BINARY_SHARE = 0.05

ProductLike = Union[ProductText, dict]


def _as_product(item: Any) -> ProductText:
    if isinstance(item, ProductText):
        return item
    if isinstance(item, dict):
        fields = {k: item[k] for k in ("uid", "title", "description", "brand", "categories",
                                       "attributes") if k in item}
        if "uid" not in fields and "id" in item:
            fields["uid"] = item["id"]
        fields.setdefault("uid", None)
        fields.setdefault("title", None)
        return ProductText(**fields)
    raise TypeError(f"expected ProductText or dict, got {type(item).__name__}")


def _check_text(name: str, value: Any, required: bool) -> str | None:
    if value is None or value == "":
        return f"missing {name}" if required else None
    if not isinstance(value, str):
        return f"{name} must be str, got {type(value).__name__}"
    if len(value) > MAX_FIELD_CHARS:
        return f"{name} too long ({len(value)} chars > {MAX_FIELD_CHARS})"
    bad = sum(1 for c in value if (ord(c) < 32 and c not in "\t\n\r") or c == "\ufffd")
    if bad > MAX_BINARY_SHARE * len(value):
        return f"{name} looks like binary data ({bad} control characters in {len(value)})"
    if required and not value.strip():
        return f"missing {name}"
    return None


def validate(product: ProductText) -> str | None:
    """Why ``product`` cannot be processed, or None."""
    if product.uid is None or not isinstance(product.uid, (str, int)):
        return f"uid must be str, got {type(product.uid).__name__}"
    for name, required in (("title", True), ("description", False), ("brand", False)):
        error = _check_text(name, getattr(product, name), required)
        if error:
            return error
    cats = product.categories
    if cats is None:
        product.categories = []
    elif isinstance(cats, str):
        product.categories = [c for c in cats.split(",")]
    elif not isinstance(cats, (list, tuple)) or not all(isinstance(c, str) for c in cats):
        return "categories must be a list of str"
    return None


def _field_docs(pipe: Language, product: ProductText) -> list[tuple[Any, str]]:
    """Unprocessed title and description docs of a product, with the context components read."""
    out = []
    for field in ("title", "description"):
        value = getattr(product, field) or ""
        if value:
            doc = pipe.make_doc(value)
            doc.user_data["field"] = field
            if field == "title":
                doc.user_data["context"] = product.description or ""
                doc.user_data["category"] = product.categories[-1] if product.categories else ""
            out.append((doc, field))
    return out


def prepare_docs(pipe: Language, products: Iterable[ProductText],
                 batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """Field -> processed doc per (valid) product, as ``extract`` sees them (for training)."""
    products = list(products)
    fields = [_field_docs(pipe, p) for p in products]
    done = iter(pipe.pipe([d for docs in fields for d, _ in docs], batch_size=batch_size))
    for docs in fields:
        yield {field: next(done) for _, field in docs}


def extract(pipe: Language, products: Iterable[ProductLike], batch_size: int = 64,
            use_structured: bool = True, accept: bool = True) -> Iterator[ExtractionResult]:
    """Yield one ExtractionResult per product, in input order.

    Title and description are separate docs so spans are relative to their field. With
    ``use_structured=False`` the brand/categories fields are ignored (text-only evaluation).
    With the pipeline's acceptor (``accept``), each fact gets a calibrated confidence and status
    ``auto`` or ``candidate`` (``nlp.acceptance``).
    """
    kb = pipeline_kb(pipe)
    acceptor = pipeline_acceptor(pipe) if accept else None
    builder = FactBuilder(kb, EXTRACTOR_VERSION, *brand_policy(pipe))
    stream = iter(products)
    while True:
        chunk = list(islice(stream, batch_size))
        if not chunk:
            return
        prepared: list[tuple[Any, ProductText | None, str | None]] = []
        for item in chunk:
            try:
                product = _as_product(item)
                error = validate(product)
            except Exception as exc:  # a malformed record must not stop the batch
                product, error = None, f"invalid product: {exc}"
            uid = product.uid if product is not None else getattr(item, "uid", None)
            prepared.append((uid, product if error is None else None, error))
        docs_in = []
        for index, (_, product, _) in enumerate(prepared):
            if product is None:
                continue
            docs_in += [(doc, (index, field)) for doc, field in _field_docs(pipe, product)]
        per_product: dict[int, dict] = {}
        try:
            for doc, (index, field) in pipe.pipe(docs_in, as_tuples=True, batch_size=batch_size):
                per_product.setdefault(index, {})[field] = doc
        except Exception:
            # Isolate the offending product instead of failing the whole batch.
            per_product = {}
            for doc, (index, field) in docs_in:
                if prepared[index][2] is not None:
                    continue
                try:
                    per_product.setdefault(index, {})[field] = pipe(doc)
                except Exception as exc:
                    uid, _, _ = prepared[index]
                    prepared[index] = (uid, None, f"pipeline failed on {field}: "
                                                  f"{type(exc).__name__}: {exc}")
        for index, (uid, product, error) in enumerate(prepared):
            if product is None:
                yield ExtractionResult(product_uid=uid, facts=[], error=error)
                continue
            try:
                docs = per_product.get(index, {})
                facts = builder.from_docs(docs)
                if "title" in docs:
                    facts += attribute_facts(docs["title"], "title", EXTRACTOR_VERSION)
                if use_structured:
                    facts = builder.structured(product.brand or "", product.categories) + facts
                if acceptor is not None:
                    acceptor.decide(facts, {"title": product.title, "description": product.description or "",
                                            "brand": product.brand or "", "categories": product.categories})
                yield ExtractionResult(product_uid=uid, facts=facts)
            except Exception as exc:  # keep going; report which product failed and why
                yield ExtractionResult(product_uid=uid, facts=[],
                                       error=f"extraction failed: {type(exc).__name__}: {exc}")
