"""The blank English pipeline every kms spaCy pipeline starts from (the extractor's and the
attribute NER's): a leaf module, so both import it without importing each other."""
from __future__ import annotations

import re

import spacy
from spacy.language import Language
from spacy.util import compile_suffix_regex


def make_blank() -> Language:
    """blank("en") whose tokenizer keeps "TRA708T", "128GB", "12V" as single tokens.

    The stock English suffix rules split a unit off a number ("TRA708" + "T"), which cuts
    model numbers in half; measures are found by regex on characters anyway.
    """
    nlp = spacy.blank("en")
    suffixes = [s for s in nlp.Defaults.suffixes if "(?<=[0-9])(?:km|" not in s
                and not re.search(r"\(\?<=\[0-9\]\)\(\?:[a-z]", s)]
    nlp.tokenizer.suffix_search = compile_suffix_regex(suffixes).search
    return nlp
