"""The extraction pipeline of ingestion: the knowledge base (curated entities and their aliases),
the trained NER / acceptor / attribute models on disk, and the spaCy pipeline built from them,
rebuilt when the knowledge base changes."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

import nlp
from kms.catalogue.models import Product

from .attributes import attribute_schema, schema_version
from .models import CURATED, Entity, Fact, Status

log = logging.getLogger(__name__)

_pipeline_lock = threading.Lock()
_pipeline: tuple[tuple, object] | None = None


# --- the pipeline, rebuilt when the knowledge base changes ---------------------------------------
def _curated_entities():
    """Entities a curator shaped (aliases, merges, approvals): the part of the KB beyond product fields."""
    from django.db.models import Q

    return Entity.objects.filter(Q(status=Status.APPROVED) | Q(merged_into__isnull=False) | ~Q(aliases=[]))


def knowledge_version() -> tuple:
    # Entities that ingestion itself creates do not change the rules, so they are not counted:
    # otherwise every chunk of a job would rebuild the pipeline.
    p = Product.objects.aggregate(n=Count("id"), t=Max("updated_at"))
    e = _curated_entities().aggregate(n=Count("id"), t=Max("updated_at"))
    return (p["n"], str(p["t"]), e["n"], str(e["t"]), str(current_ner_dir()), schema_version(),
            str(attribute_model_dir()))


def nlp_dir() -> Path:
    return Path(settings.KMS_NLP_DIR)


def current_ner_dir() -> Path | None:
    pointer = nlp_dir() / "CURRENT"
    if pointer.exists():
        path = nlp_dir() / pointer.read_text().strip()
        if path.exists():
            return path
    return None


def attribute_model_dir() -> Path | None:
    """A trained attribute NER (``nlp.attributes.save_model``) under KMS_NLP_DIR/attributes, if any."""
    path = nlp_dir() / "attributes"
    return path if (path / "ner").exists() else None


def train_nlp_models(n_iter: int = 6, seed: int = 0, log=print, acceptor_only: bool = False) -> dict:
    """Train the NER, brand and category models on the catalogue (weak supervision from its
    structured fields) and refit the fact acceptor with the curators' decisions; save a versioned
    artefact and make ingestion use it from now on. ``acceptor_only`` refits only the acceptor
    (the current artefact's other models are copied into the new version)."""
    import shutil

    from nlp.training import train_ner

    version = timezone.now().strftime("ner-%Y%m%d-%H%M%S")
    out = nlp_dir() / version
    if acceptor_only:
        current = current_ner_dir()
        if current is not None:
            shutil.copytree(current, out)
        out.mkdir(parents=True, exist_ok=True)
        scores: dict = {}
    else:
        products = [product_text(p) for p in Product.objects.all().iterator()]
        scores = train_ner(products, out, n_iter=n_iter, seed=seed, log=log)
    acceptor, n_curated = acceptor_from_curation()
    acceptor.save(out / "acceptor.json")
    (nlp_dir() / "CURRENT").write_text(version)
    return scores | {"artefact": version, "curated_facts": n_curated}


def curated_examples() -> list[tuple]:
    """Curators' decisions as acceptor training data: (nlp Fact, its cues, approved?) for every
    approved or rejected extracted fact, with cues computed against the product's other facts."""
    from nlp.acceptance import product_cues

    by_product: dict[int, list[Fact]] = {}
    for f in (Fact.objects.filter(product__facts__status__in=CURATED).distinct()
              .select_related("entity", "product").order_by("product_id", "id")):
        by_product.setdefault(f.product_id, []).append(f)
    out = []
    for rows in by_product.values():
        p = rows[0].product
        text = {"title": p.title, "description": p.description, "brand": p.brand,
                "categories": list(p.category_path)}
        facts = [_as_nlp_fact(f) for f in rows]
        for f, nf, cue_names in zip(rows, facts, product_cues(facts, text)):
            if f.status in CURATED and f.extractor not in ("", "curator"):
                out.append((nf, cue_names, f.status == Status.APPROVED))
    return out


def _as_nlp_fact(f: Fact) -> "nlp.Fact":
    object_type, _, key = f.entity.uid.partition(":")
    try:
        value = float(f.value) if f.value else None
    except ValueError:
        value = None
    return nlp.Fact(relation=f.relation, object_type=object_type.upper(), object_key=key,
                    object_name=f.entity.name, value=value, unit=f.unit or None, field=f.field,
                    start=f.start or 0, end=f.end or 0, text=f.text, extractor=f.extractor,
                    confidence=f.confidence)


def acceptor_from_curation() -> tuple["nlp.acceptance.Acceptor", int]:
    """The shipped acceptor (fitted on the labelled calibration sample) plus curators' decisions."""
    from nlp.acceptance import Acceptor

    base = Acceptor.load() or Acceptor()
    examples = curated_examples()
    return base.with_feedback(examples, version=f"{base.version}+curated-{len(examples)}"), len(examples)


def product_text(p: Product) -> nlp.ProductText:
    return nlp.ProductText(uid=p.pk, title=p.title, description=p.description, brand=p.brand,
                           categories=list(p.category_path), attributes=dict(p.attributes))


def build_knowledge_base() -> "nlp.KnowledgeBase":
    """Structured catalogue fields plus curated entities (aliases, merges) from the database."""
    products = (nlp.ProductText(uid=pid, title="", brand=brand or "", categories=list(cats or []))
                for pid, brand, cats in Product.objects.values_list("id", "brand", "category_path").iterator())
    kb = nlp.KnowledgeBase.from_products(products)
    kinds = {"BRAND", "PRODUCT_TYPE", "MATERIAL", "COLOR", "USE"}
    for entity in _curated_entities().filter(type__in=kinds).select_related("merged_into").iterator():
        target = entity.merged_into or entity
        key = target.uid.split(":", 1)[1]
        if key not in kb.entities.get(entity.type, {}):
            kb.add_entity(entity.type, target.name, key=key)
        if entity.merged_into_id:
            # the merged entity may also come from products' brand fields: fold it in wholesale
            drop = entity.uid.split(":", 1)[1]
            if drop in kb.entities.get(entity.type, {}):
                kb.merge(entity.type, key, drop)
        for alias in [entity.name, *entity.aliases]:
            kb.add_alias(entity.type, key, alias)
    return kb


def get_pipeline():
    global _pipeline
    version = knowledge_version()
    with _pipeline_lock:
        if _pipeline is None or _pipeline[0] != version:
            started = time.perf_counter()
            pipe = nlp.build_pipeline(build_knowledge_base(), ner_model_dir=current_ner_dir(),
                                      attributes=attribute_schema(),
                                      attribute_model_dir=attribute_model_dir())
            _pipeline = (version, pipe)
            log.info("built NLP pipeline in %.1fs", time.perf_counter() - started)
        return _pipeline[1]
