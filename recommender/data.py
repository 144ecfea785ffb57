"""Interaction data, the standard leave-last-out split and dataset loaders.

Everything is integer-indexed: users 0..n_users-1, items 0..n_items-1. External ids are kept
beside the indices so that results can be mapped back to the catalogue.
"""
from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

DATASETS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


@dataclass
class InteractionData:
    """Users' chronologically ordered item sequences plus optional item–entity knowledge."""

    user_ids: list[str]
    item_ids: list[str]
    sequences: list[list[int]]  # per user, item indices in chronological order
    # Knowledge: (item_idx, relation_idx, entity_idx) triples; names index into the lists.
    entity_ids: list[str] = field(default_factory=list)
    relations: list[str] = field(default_factory=list)
    item_entity: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    entity_names: list[str] = field(default_factory=list)  # display names, parallel to entity_ids

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return sum(len(s) for s in self.sequences)


@dataclass
class Split:
    """Leave-last-out split: train sequences, one validation and one test target per user.

    Users whose sequence is too short to give both targets get -1 there and are skipped by
    the evaluator for that stage.
    """

    n_users: int
    n_items: int
    train: list[list[int]]
    valid_target: np.ndarray
    test_target: np.ndarray

    def history(self, stage: str) -> list[list[int]]:
        """Items a model may use as input (and that are masked) at ``stage``."""
        if stage == "valid":
            return self.train
        if stage == "test":
            return [
                t + ([int(v)] if v >= 0 else []) for t, v in zip(self.train, self.valid_target)
            ]
        raise ValueError(f"unknown stage {stage!r}")

    def targets(self, stage: str) -> np.ndarray:
        return {"valid": self.valid_target, "test": self.test_target}[stage]

    def matrix(self, stage: str = "valid") -> sp.csr_matrix:
        """Binary user × item matrix of the history at ``stage`` (duplicates collapsed)."""
        return history_matrix(self.history(stage), self.n_users, self.n_items)


def history_matrix(histories: list[list[int]], n_users: int, n_items: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.fromiter((i for h in histories for i in h), dtype=np.int64, count=len(rows))
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def leave_last_out(data: InteractionData) -> Split:
    train, valid, test = [], [], []
    for seq in data.sequences:
        if len(seq) >= 3:
            train.append(list(seq[:-2]))
            valid.append(seq[-2])
            test.append(seq[-1])
        elif len(seq) == 2:
            train.append([seq[0]])
            valid.append(-1)
            test.append(seq[1])
        else:
            train.append(list(seq))
            valid.append(-1)
            test.append(-1)
    return Split(
        n_users=data.n_users,
        n_items=data.n_items,
        train=train,
        valid_target=np.asarray(valid, dtype=np.int64),
        test_target=np.asarray(test, dtype=np.int64),
    )


class DatasetFileError(ValueError):
    """A dataset file that cannot be read (not JSON from some line on); names the file and line."""


def read_json_object(path: Path | str) -> Iterable[tuple[str, object, int]]:
    """``(key, value, line)`` for each member of the JSON object a file holds, ``line`` being the
    1-based line where the key is written, so errors about one member can name its line."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    newlines = [m.start() for m in re.finditer("\n", text)]
    decoder = json.JSONDecoder()
    space = re.compile(r"\s*")

    def line_at(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    def expect(pos: int, chars: str) -> int:
        pos = space.match(text, pos).end()
        if pos >= len(text) or text[pos] not in chars:
            raise DatasetFileError(f"{path.name} line {line_at(pos)}: expected {' or '.join(repr(c) for c in chars)}")
        return pos

    try:
        pos = expect(0, "{") + 1
        if text[expect(pos, '"}')] == "}":
            return
        while True:
            pos = expect(pos, '"')
            line = line_at(pos)
            key, pos = decoder.raw_decode(text, pos)
            pos = expect(pos, ":") + 1
            value, pos = decoder.raw_decode(text, space.match(text, pos).end())
            yield key, value, line
            pos = expect(pos, ",}")
            if text[pos] == "}":
                return
            pos += 1
    except json.JSONDecodeError as exc:
        raise DatasetFileError(f"{path.name} line {exc.lineno}: invalid JSON ({exc.msg})") from exc


def split_categories(value) -> list:
    """A category path from a comma-separated string ("A,B" or "A, B") or a list (kept as is)."""
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    return value if value is not None else []


def amazon_products(items_path: Path | str) -> tuple[list, list[int]]:
    """Products of an Amazon ``<Name>.item.json`` (``{"<id>": {title, description, brand,
    categories}}``) in the file's order, and the line each one starts on."""
    products, lines = [], []
    for iid, rec, line in read_json_object(items_path):
        if isinstance(rec, dict):
            rec = {"external_id": iid, "title": rec.get("title") or "", "description": rec.get("description") or "",
                   "brand": rec.get("brand") or "", "category_path": split_categories(rec.get("categories"))}
        products.append(rec)  # anything else is reported by the validation, with its line
        lines.append(line)
    return products, lines


# The Amazon dumps hold sequences without times: position n of a user's sequence becomes
# AMAZON_EPOCH + n seconds, so the order is the file's.
AMAZON_EPOCH = datetime(2018, 1, 1, tzinfo=timezone.utc)


def amazon_events(inter_path: Path | str, limit_users: int | None = None) -> tuple[list, list[int]]:
    """Events of an Amazon ``<Name>.inter.json`` (``{"<user>": [item ids in order]}``) in the
    generic event format, one second apart per user, and the line each user's sequence is on."""
    inter_path = Path(inter_path)
    name = inter_path.name[:-len(".inter.json")].lower()
    rows = list(read_json_object(inter_path))
    wanted = set(id_order(u for u, _, _ in rows)[:limit_users]) if limit_users else None
    events, lines = [], []
    for user, seq, line in rows:
        if wanted is not None and user not in wanted:
            continue
        if not isinstance(seq, list):
            events.append({"user": user, "product": None})  # reported by the validation
            lines.append(line)
            continue
        for pos, item in enumerate(seq):
            events.append({"event_id": f"{name}-{user}-{pos}", "user": user, "product": str(item),
                           "type": "purchase", "timestamp": (AMAZON_EPOCH + timedelta(seconds=pos)).isoformat()})
            lines.append(line)
    return events, lines


def amazon_files(root: Path | str) -> tuple[str, Path, Path]:
    """The ``<Name>.item.json`` + ``<Name>.inter.json`` pair in ``root``: (name, items, interactions).

    Any name; exactly one pair must be there.
    """
    root = Path(root)
    pairs = sorted(p.name[:-len(".item.json")] for p in root.glob("*.item.json")
                   if (root / (p.name[:-len(".item.json")] + ".inter.json")).exists())
    if len(pairs) != 1:
        found = ", ".join(pairs) or "none"
        raise FileNotFoundError(f"{root}: expected one <Name>.item.json + <Name>.inter.json pair, found {found}")
    name = pairs[0]
    return name, root / f"{name}.item.json", root / f"{name}.inter.json"


def id_order(ids) -> list[str]:
    """Ids as strings, numerically when they all are integers (the files' own order), else as text."""
    ids = [str(i) for i in ids]
    if all(i.lstrip("-").isdigit() for i in ids):
        return sorted(ids, key=int)
    return sorted(ids)


def load_amazon(path: Path | str) -> tuple[InteractionData, dict[str, dict]]:
    """An Amazon-review dump in the sequential-recommendation layout (``<Name>.item.json``:
    ``{"<item id>": {title, description, brand, categories}}``; ``<Name>.inter.json``:
    ``{"<user id>": [item ids in chronological order]}``).

    Returns the interaction data (users and items in id order, sequences in file order) and the
    raw item records keyed by item id. Interactions with items the item file lacks are dropped.
    """
    _, item_path, inter_path = amazon_files(path)
    items = json.loads(item_path.read_text())
    inter = json.loads(inter_path.read_text())
    item_ids = id_order(items)
    index = {iid: n for n, iid in enumerate(item_ids)}
    user_ids = id_order(inter)
    sequences = [[index[str(i)] for i in inter[u] if str(i) in index] for u in user_ids]
    return InteractionData(user_ids=user_ids, item_ids=item_ids, sequences=sequences), items


def load_scientific(path: Path | str | None = None) -> tuple[InteractionData, dict[str, dict]]:
    """Amazon Industrial & Scientific (``load_amazon`` on ``shared/datasets/amazon-scientific``)."""
    return load_amazon(Path(path) if path else DATASETS_DIR / "amazon-scientific")


def load_user_item_lines(path: Path | str) -> dict[int, list[int]]:
    """The KGAT text format: each line ``user item item ...``."""
    out: dict[int, list[int]] = {}
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if parts:
                out[int(parts[0])] = [int(x) for x in parts[1:]]
    return out
