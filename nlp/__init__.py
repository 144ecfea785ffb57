"""Knowledge ingestion: product text -> facts for the knowledge graph.

    kb = KnowledgeBase.from_products(products)
    pipe = build_pipeline(kb, ner_model_dir=None)
    for result in extract(pipe, products, batch_size=64): ...
"""
from .extract import extract
from .knowledge import KnowledgeBase
from .pipeline import EXTRACTOR_VERSION, build_pipeline
from .types import ExtractionResult, Fact, ProductText

__all__ = ["EXTRACTOR_VERSION", "ExtractionResult", "Fact", "KnowledgeBase", "ProductText",
           "build_pipeline", "extract"]
