"""Okapi BM25 over a sparse document-term matrix (scipy), scored a query at a time with numpy."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse


class BM25:
    """Weights are precomputed per (document, term) so a query is a sum of a few sparse columns."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75):
        self.vocabulary: dict[str, int] = {}
        rows, cols = [], []
        for d, tokens in enumerate(documents):
            for t in tokens:
                cols.append(self.vocabulary.setdefault(t, len(self.vocabulary)))
                rows.append(d)
        n_docs, n_terms = len(documents), max(len(self.vocabulary), 1)
        tf = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                               shape=(n_docs, n_terms))
        tf.sum_duplicates()
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        avg = lengths.mean() if n_docs else 1.0
        df = np.bincount(tf.indices, minlength=n_terms)
        self.idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))
        doc_of_entry = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        data = tf.data * (k1 + 1) / (tf.data + norm[doc_of_entry]) * self.idf[tf.indices]
        self.weights = sparse.csr_matrix((data.astype(np.float32), tf.indices, tf.indptr),
                                         shape=tf.shape).tocsc()
        self.n_docs = n_docs

    def term_ids(self, terms: Sequence[str]) -> list[int]:
        return [self.vocabulary[t] for t in terms if t in self.vocabulary]

    def scores(self, terms: Sequence[str], weights: Sequence[float] | None = None) -> np.ndarray:
        """Dense scores for every document (zeros where no term matches)."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        w = self.weights
        for n, t in enumerate(terms):
            col = self.vocabulary.get(t)
            if col is None:
                continue
            start, end = w.indptr[col], w.indptr[col + 1]
            out[w.indices[start:end]] += w.data[start:end] * (weights[n] if weights is not None else 1.0)
        return out
