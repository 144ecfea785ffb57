"""Writing the project's split (and knowledge graph) as RecBole atomic files.

Users and items keep the project's integer indices as RecBole tokens (``"17"``), so mapping
RecBole's internal ids back is a dictionary look-up (``dataset.field2token_id``).

The split is fed to RecBole pre-split, as its ``benchmark_filename`` convention expects:
``<name>.train.inter``, ``<name>.valid.inter``, ``<name>.test.inter`` in ``<dir>/<name>/``.
For general / knowledge-aware models each row is one (user, item) pair; ``timestamp`` is the
item's position in the user's chronological sequence. For sequential models the rows are
pre-augmented (``item_id_list`` = up to ``max_len`` previous items, ``item_id`` = target),
which is what RecBole's ``SequentialDataset`` reads when ``benchmark_filename`` is set.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

BENCHMARK_FILES = ["train", "valid", "test"]


def _token(text: str) -> str:
    """RecBole atomic files are tab-separated and token_seq is space-separated: no whitespace."""
    return re.sub(r"\s+", "_", str(text).strip()) or "_"


def write_general_inter(out_dir: Path, name: str, split, refit: bool = False) -> dict[str, int]:
    """``.train/.valid/.test.inter`` with one (user, item, position) row per interaction.

    ``refit``: the train file holds train + validation interactions (for refitting before the
    test; the valid file is then only a placeholder RecBole requires)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    counts = {}
    rows = {k: [] for k in BENCHMARK_FILES}
    for u, train in enumerate(split.train):
        for pos, i in enumerate(train):
            rows["train"].append(f"{u}\t{i}\t{pos}\n")
        v, t = int(split.valid_target[u]), int(split.test_target[u])
        if v >= 0:
            rows["valid"].append(f"{u}\t{v}\t{len(train)}\n")
            if refit:
                rows["train"].append(f"{u}\t{v}\t{len(train)}\n")
        if t >= 0:
            rows["test"].append(f"{u}\t{t}\t{len(train) + (v >= 0)}\n")
    for k in BENCHMARK_FILES:
        (out_dir / f"{name}.{k}.inter").write_text(header + "".join(rows[k]))
        counts[k] = len(rows[k])
    return counts


def write_sequential_inter(out_dir: Path, name: str, split, max_len: int = 50, refit: bool = False) -> dict[str, int]:
    """Pre-augmented sequential rows: every train prefix → next train item; valid: train → valid
    target; test: train + valid → test target (the project's test input for SASRec).
    ``refit``: the train file also holds the (train → valid target) rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    rows = {k: [] for k in BENCHMARK_FILES}

    def row(u: int, prefix: Sequence[int], target: int) -> str:
        return f"{u}\t{' '.join(map(str, prefix[-max_len:]))}\t{target}\n"

    for u, train in enumerate(split.train):
        for t in range(1, len(train)):
            rows["train"].append(row(u, train[:t], train[t]))
        v, te = int(split.valid_target[u]), int(split.test_target[u])
        if v >= 0 and train:
            rows["valid"].append(row(u, train, v))
            if refit:
                rows["train"].append(row(u, train, v))
        hist = train + ([v] if v >= 0 else [])
        if te >= 0 and hist:
            rows["test"].append(row(u, hist, te))
    counts = {}
    for k in BENCHMARK_FILES:
        (out_dir / f"{name}.{k}.inter").write_text(header + "".join(rows[k]))
        counts[k] = len(rows[k])
    return counts


def write_kg_files(
    out_dir: Path,
    name: str,
    kg_rows: Iterable[tuple[str, str, str]],
    link: dict[int, str],
) -> dict[str, int]:
    """Raw ``.kg`` (head, relation, tail entity tokens) and ``.link`` (item → entity token)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    kg_lines = [f"{_token(h)}\t{_token(r)}\t{_token(t)}\n" for h, r, t in kg_rows]
    link_lines = [f"{i}\t{_token(e)}\n" for i, e in sorted(link.items())]
    (out_dir / f"{name}.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\n" + "".join(kg_lines))
    (out_dir / f"{name}.link").write_text("item_id:token\tentity_id:token\n" + "".join(link_lines))
    return {"kg_triples": len(kg_lines), "linked_items": len(link_lines)}


def export_kg(
    out_dir: Path | str,
    name: str,
    triples: Iterable[tuple[int, str, str]],
    entity_triples: Iterable[tuple[str, str, str]] = (),
) -> dict[str, int]:
    """Write a RecBole ``.kg`` + ``.link`` from item-centred triples.

    ``triples``: ``(item_idx, relation, entity)`` — item indices are the project's (the same
    indices as ``recommender.data``), relation and entity any strings (e.g. ``HAS_BRAND``,
    ``brand:stanley``). Feed exactly the triples the project's own model uses
    (``InteractionData.item_entity`` mapped through ``relations`` / ``entity_ids``) to give the
    peers the same knowledge. Each item that occurs becomes the KG entity ``item:<idx>`` and is
    linked to it; ``entity_triples`` adds entity–entity edges ``(head, relation, tail)``.
    Entity strings are mapped to whitespace-free tokens ``e<n>``.
    """
    out_dir = Path(out_dir)
    ent_token: dict[str, str] = {}

    def tok(e: str) -> str:
        if e not in ent_token:
            ent_token[e] = f"e{len(ent_token)}"
        return ent_token[e]

    rows: list[tuple[str, str, str]] = []
    link: dict[int, str] = {}
    seen = set()
    for i, rel, ent in triples:
        i = int(i)
        link[i] = f"item:{i}"
        r = (link[i], _token(rel), tok(str(ent)))
        if r not in seen:
            seen.add(r)
            rows.append(r)
    for h, rel, t in entity_triples:
        r = (tok(str(h)), _token(rel), tok(str(t)))
        if r not in seen:
            seen.add(r)
            rows.append(r)
    stats = write_kg_files(out_dir, name, rows, link)
    stats["entities"] = len(ent_token)
    stats["relations"] = len({r for _, r, _ in rows})
    return stats
