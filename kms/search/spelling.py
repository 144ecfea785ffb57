"""Spelling tolerance: a query word the catalogue never uses is replaced by the most frequent
catalogue word within one edit (insert, delete, substitute, or swap two neighbours).

Candidates come from a delete-one-character index over the vocabulary (the SymSpell idea), so a
lookup is a handful of dictionary probes, not a scan of the vocabulary.
"""
from __future__ import annotations

from collections import defaultdict

MIN_LENGTH = 4  # shorter words have too many neighbours one edit away ("nut", "not", "net")


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def within_one_edit(a: str, b: str) -> bool:
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


class SpellingIndex:
    def __init__(self, frequencies: dict[str, int]):
        self.frequency = frequencies
        self.by_delete: dict[str, list[str]] = defaultdict(list)
        for word in frequencies:
            if len(word) >= MIN_LENGTH and word.isalpha():
                for key in _deletes(word) | {word}:
                    self.by_delete[key].append(word)

    def correct(self, word: str) -> str | None:
        """The catalogue word ``word`` was probably meant to be, or None when it is known or unmatched."""
        if word in self.frequency or len(word) < MIN_LENGTH or not word.isalpha():
            return None
        candidates = {c for key in _deletes(word) | {word} for c in self.by_delete.get(key, ())}
        candidates = [c for c in candidates if within_one_edit(word, c)]
        if not candidates:
            return None
        return max(candidates, key=lambda c: (self.frequency[c], c))
