"""Train every configured component, choose fusion weights on validation, report test figures
and hand back a deployable ``TrainedModel``.

Protocol (shared/datasets/README.md): leave-last-out; trainable components learn on the train
items and stop early on validation NDCG@20; fusion weights are chosen on validation; test
metrics take train + validation as the history (neighbourhood models recompute their
similarities from it, graph models propagate over its graph; nothing is retrained on it). The
deployed model then takes ``deploy_history`` as its state: every known interaction ("all",
the default, what a live system would use) or "train+valid" (exactly the tested state).
"""
from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from kgschema import IN_CATEGORY
from recommender.calibration import ColdStartBlend, exposure_floor, fit_cold_blend
from recommender.data import InteractionData, leave_last_out
from recommender.fusion import FusionWeights, choose_weights, fused_scores
from recommender.lightgcn import GraphRecommender
from recommender.metrics import evaluate
from recommender.neighbourhood import EASE, EntityCF, ItemCF, UserCF, recency_matrix
from recommender.popularity import Popularity
from recommender.scoring import (FitContext, Histories, Knowledge, Scorer, items_without_interactions, normalise_rows,
                                 pick_device, seed_everything)

FORMAT_VERSION = 1


class PackedHistories(Sequence):
    """Per-user item histories over one flat array and offsets (a loaded model's state, possibly
    memory-mapped): no Python list per user is kept; ``h[u]`` builds user ``u``'s list."""

    def __init__(self, flat: np.ndarray, lengths: np.ndarray):
        self.flat = flat
        self.offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, u):
        if isinstance(u, slice):
            return [self[n] for n in range(*u.indices(len(self)))]
        if u < 0:
            u += len(self)
        if not 0 <= u < len(self):
            raise IndexError(u)
        return self.flat[self.offsets[u]:self.offsets[u + 1]].tolist()

    def __iter__(self):
        for u in range(len(self)):
            yield self[u]

    def __eq__(self, other) -> bool:
        return len(self) == len(other) and all(a == list(b) for a, b in zip(self, other))


@dataclass
class TrainConfig:
    components: tuple[str, ...] = ("popularity", "itemcf", "lightgcn", "entitycf")
    fusion: tuple[str, ...] = ("itemcf", "lightgcn")  # components mixed into the served score
    dim: int = 64
    layers: int = 3
    epochs: int = 300
    lr: float = 5e-3
    reg: float = 1e-4
    batch_size: int = 2048
    eval_every: int = 5
    patience: int = 4  # evaluations without improvement before stopping
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; 1 is far faster on a contended machine
    cf_neighbours: int = 100
    cf_recency: float = 1.0  # r(u, j) = cf_recency**age; 1.0 is the plain binary item-CF
    usercf_neighbours: int = 100
    seq_len: int = 50
    seq_layers: int = 2
    seq_heads: int = 2
    seq_dropout: float = 0.3
    seq_epochs: int = 200
    seq_lr: float = 1e-3
    seq_batch_size: int = 256
    # Above this many items SASRec's training loss ranks each target among the batch's targets and
    # this many sampled items, not all of them (an epoch's cost stays linear in the shop); 0: all.
    seq_softmax_items: int = 8192
    # The fusion weight search holds a dense (users × items) score matrix per component: it ranks
    # at most this many validation users (a seeded sample), so its memory and time stay linear in
    # the catalogue instead of growing with users × items; 0: every validation user.
    fusion_users: int = 10000
    deploy_history: str = "all"  # "all" | "train+valid"
    # Extra fusions over subsets of ``fusion``, reported (as "fusion[a+b]") but not served.
    fusion_ablations: tuple[tuple[str, ...], ...] = ()
    # After choosing epochs and fusion weights on validation, train every trainable component
    # again on train + validation for its best epoch count (the protocol allows it: "a model may
    # be refit on them"); the test and the deployed model use the refit components.
    refit: bool = False
    # Rank items with no interactions among the rest by calibrated hit probability from this
    # inductive component (recommender/calibration.py); "" turns the blend off.
    cold_blend: str = "entitycf"
    # With the blend: the j-th best item without interactions (new items included) is shown no
    # lower than position j x max(cold_every, items / cold items) in every list
    # (calibration.exposure_floor): new items get at most their catalogue share of the places; 0: off.
    cold_every: int = 10
    # Relations of the knowledge graph the components see (None: all of them; (): none). The
    # knowledge-graph ablation of bench/product_path.py trains through it.
    kg_relations: tuple[str, ...] | None = None


def build_component(name: str, cfg: TrainConfig, n_users: int, n_items: int, knowledge: Knowledge) -> Scorer:
    graph_kw = dict(dim=cfg.dim, lr=cfg.lr, reg=cfg.reg, batch_size=cfg.batch_size, epochs=cfg.epochs,
                    eval_every=cfg.eval_every, patience=cfg.patience, device=cfg.device)
    if name == "popularity":
        return Popularity(n_items)
    if name == "itemcf":
        return ItemCF(n_items, cfg.cf_neighbours, 1.0)
    if name == "itemcf_recent":
        c = ItemCF(n_items, cfg.cf_neighbours, cfg.cf_recency if cfg.cf_recency < 1 else 0.5)
        c.name = "itemcf_recent"
        return c
    if name == "usercf":
        return UserCF(n_items, cfg.usercf_neighbours)
    if name == "ease":
        return EASE(n_items)
    if name == "entitycf":
        from recommender.knowledge import item_entity_matrix

        return EntityCF(n_items, item_entity_matrix(knowledge.item_entity, n_items, knowledge.n_entities),
                        cfg.cf_neighbours)
    if name == "lightgcn":
        return GraphRecommender(n_users, n_items, layers=cfg.layers, **graph_kw)
    if name == "bprmf":
        return GraphRecommender(n_users, n_items, layers=0, **graph_kw)
    if name == "kgcn":
        return GraphRecommender(n_users, n_items, layers=cfg.layers, use_knowledge=True, knowledge=knowledge, **graph_kw)
    if name in ("sasrec", "kgsasrec"):
        from recommender.sequential import SequentialRecommender

        return SequentialRecommender(
            n_items, dim=cfg.dim, max_len=cfg.seq_len, layers=cfg.seq_layers, heads=cfg.seq_heads,
            dropout=cfg.seq_dropout, knowledge=knowledge if name == "kgsasrec" else None, name=name,
            lr=cfg.seq_lr, batch_size=cfg.seq_batch_size, epochs=cfg.seq_epochs, eval_every=cfg.eval_every,
            patience=cfg.patience, device=cfg.device, softmax_items=cfg.seq_softmax_items,
        )
    raise ValueError(f"unknown component {name!r}")


def component_from_state(kind: str, state: dict) -> Scorer:
    classes: dict[str, type[Scorer]] = {"Popularity": Popularity, "ItemCF": ItemCF, "UserCF": UserCF, "EntityCF": EntityCF, "EASE": EASE,
                                        "GraphRecommender": GraphRecommender}
    if kind == "SequentialRecommender":
        from recommender.sequential import SequentialRecommender

        classes[kind] = SequentialRecommender
    return classes[kind].from_state(state)


@dataclass
class TrainedModel:
    user_ids: list[str]
    item_ids: list[str]
    components: dict[str, Scorer]
    weights: FusionWeights
    history: list[list[int]]  # per user, the deployed state (item indices, chronological)
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # stage -> model -> metric
    params: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    entity_ids: list[str] = field(default_factory=list)
    entity_names: list[str] = field(default_factory=list)
    relations: list[str] = field(default_factory=list)
    item_entity: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    cold_blend: ColdStartBlend | None = None
    curve: list[dict] = field(default_factory=list)  # per-epoch loss / validation points (FitContext.epoch)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @functools.cached_property
    def cold_items(self) -> torch.Tensor:
        """Bool (n_items,): items with no interaction in the deployed history."""
        return items_without_interactions(self.history, self.n_items)

    # -- items that arrived after training -------------------------------------------------
    def set_new_items(self, items: dict[str, Iterable[tuple[str, str]]]) -> list[str]:
        """Make items unknown to every component scorable from their knowledge-graph entities.

        ``items`` maps an item id to its (relation, entity uid) pairs (category ancestors
        included, as in training). Each new item gets entity-CF weights to the trained items it shares entities
        with (cosine of the binary entity vectors, the component's top-N, column-normalised),
        so ``score`` returns its calibrated cold-start probability in extra columns after the
        trained items: no retraining. Replaces the previous set; ids already trained on and items
        with no known entity are skipped. Returns the ids taken, in column order.
        """
        from recommender.knowledge import item_entity_matrix
        from recommender.neighbourhood import top_n_per_column

        self.new_item_ids, self._new_weights, self._new_similarity = [], None, None
        self.new_item_entity = np.zeros((0, 3), dtype=np.int64)
        blend = self.cold_blend
        if blend is None or blend.component not in self.components or not items:
            return []
        entity_index = {e: n for n, e in enumerate(self.entity_ids)}
        relation_index = {r: n for n, r in enumerate(self.relations)}
        trained = set(self.item_ids)
        ids, rows, cols, triples = [], [], [], []
        for item_id, pairs in items.items():
            pairs = [(rel, entity_index[e]) for rel, e in pairs if e in entity_index]
            known = sorted({e for _, e in pairs})
            if item_id in trained or not known:
                continue
            rows += [len(ids)] * len(known)
            cols += known
            triples += [(self.n_items + len(ids), relation_index[rel], e) for rel, e in pairs if rel in relation_index]
            ids.append(item_id)
        if not ids:
            return []
        n_entities = len(self.entity_ids)
        new = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(ids), n_entities))
        old = item_entity_matrix(self.item_entity, self.n_items, n_entities)

        def unit_rows(m: sp.csr_matrix) -> sp.csr_matrix:
            norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
            return sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ m

        component = self.components[blend.component]
        if hasattr(component, "weighted"):  # entity-CF's own weighting of the entity vectors
            old, new = component.weighted(old), component.weighted(new)
        sim = top_n_per_column(unit_rows(old) @ unit_rows(new).T, component.neighbours)  # (n_items, n_new)
        denom = np.asarray(sim.sum(axis=0)).ravel()
        inv = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
        self.new_item_ids = ids
        self.new_item_entity = np.asarray(triples, dtype=np.int64).reshape(-1, 3)  # for explanations
        self._new_similarity = sim.tocsr()
        self._new_weights = (sim @ sp.diags(inv.astype(np.float32))).tocsr()
        return ids

    def new_item_neighbours(self, n: int, k: int) -> list[tuple[int, float]]:
        """Trained items most similar (by entities) to new item column ``n``."""
        col = self._new_similarity.getcol(n).tocoo()
        order = np.argsort(-col.data)[:k]
        return [(int(col.row[o]), float(col.data[o])) for o in order]

    def _inductive_scores(self, users: torch.Tensor, histories: Histories) -> torch.Tensor:
        """(B, n_items + n_new) scores of the blend's inductive component, new items included
        (``histories`` name trained items only)."""
        component = self.components[self.cold_blend.component]
        scores = component.score(users, histories)
        if not getattr(self, "new_item_ids", None):
            return scores
        r = recency_matrix(histories, self.n_items, component.recency_decay)
        return torch.cat([scores, torch.as_tensor((r @ self._new_weights).toarray(), dtype=torch.float32)], dim=1)

    def score_new_items(self, users: torch.Tensor, histories: Histories) -> torch.Tensor:
        """(B, n_new) calibrated scores of the new items only: what ``score`` puts in its extra
        columns, without the fused components (a precomputed ranking supplies the rest)."""
        if not getattr(self, "new_item_ids", None):
            return torch.zeros(len(users), 0, dtype=torch.float64)
        histories = [[i for i in h if i < self.n_items] for h in histories]
        return self.cold_blend.cold_scores(normalise_rows(self._inductive_scores(users, histories)))[:, self.n_items:]

    def score(self, users: torch.Tensor, histories: Histories) -> torch.Tensor:
        """(B, n_items [+ new items]) scores; users = -1 are scored from ``histories`` alone.

        Without a cold-start blend: the fused score. With one: every item's calibrated
        probability of being next, items without interactions (and new items, in extra columns)
        ranked by the knowledge-graph component, the rest by the fusion.
        """
        new = getattr(self, "new_item_ids", None) or []
        if new:  # histories may name new items; the components only know the trained ones
            histories = [[i for i in h if i < self.n_items] for h in histories]
        fused = fused_scores(self.components, self.weights, users, histories)
        blend = self.cold_blend
        if blend is None or blend.component not in self.components:
            return fused
        cold = self.cold_items
        if new:
            fused = torch.cat([fused, torch.zeros(len(fused), len(new))], dim=1)
            cold = torch.cat([cold, torch.ones(len(new), dtype=torch.bool)])
        return exposure_floor(blend.blend(fused, self._inductive_scores(users, histories), cold), cold,
                              self.cold_every, histories)

    @property
    def cold_every(self) -> int:
        """The exposure floor of the config this model was trained with (0 for models saved before it)."""
        return int(self.params.get("cold_every") or 0)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "user_ids": self.user_ids, "item_ids": self.item_ids,
            "entity_ids": self.entity_ids, "entity_names": self.entity_names, "relations": self.relations,
            "weights": self.weights.weights, "metrics": self.metrics, "params": self.params,
            "timings": self.timings,
            "components": {n: type(c).__name__ for n, c in self.components.items()},
            "cold_blend": self.cold_blend is not None,
        }
        (path / "model.json").write_text(json.dumps(meta, indent=1))
        torch.save(
            {
                "components": {n: c.state() for n, c in self.components.items()},
                "history_flat": torch.as_tensor(np.fromiter((i for h in self.history for i in h), dtype=np.int64)),
                "history_len": torch.as_tensor([len(h) for h in self.history], dtype=torch.long),
                "item_entity": torch.as_tensor(self.item_entity),
                **({"cold_blend": self.cold_blend.state()} if self.cold_blend is not None else {}),
            },
            path / "state.pt",
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TrainedModel":
        path = Path(path)
        meta = json.loads((path / "model.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"model format {meta.get('format_version')} != supported {FORMAT_VERSION}")
        # Memory-mapped: the processes of a host that load one version share its tensors' pages
        # (the file is only ever replaced by a rename, never rewritten in place).
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True, mmap=True)
        history = PackedHistories(state["history_flat"].numpy(), state["history_len"].numpy())
        return cls(
            user_ids=meta["user_ids"], item_ids=meta["item_ids"],
            components={n: component_from_state(kind, state["components"][n]) for n, kind in meta["components"].items()},
            weights=FusionWeights(meta["weights"]), history=history, metrics=meta["metrics"], params=meta["params"],
            timings=meta["timings"], entity_ids=meta["entity_ids"], entity_names=meta["entity_names"],
            relations=meta["relations"], item_entity=state["item_entity"].numpy(),
            cold_blend=ColdStartBlend.from_state(state["cold_blend"]) if "cold_blend" in state else None,
        )


def _normalised_matrix(component: Scorer, users: np.ndarray, histories: Histories, batch: int = 1024) -> torch.Tensor:
    parts = []
    with torch.no_grad():
        for s in range(0, len(users), batch):
            u = torch.as_tensor(users[s:s + batch])
            parts.append(normalise_rows(component.score(u, [histories[i] for i in u.tolist()])))
    return torch.cat(parts)


def refit_components(components: dict[str, Scorer], split, cfg: TrainConfig, knowledge: Knowledge, ctx: FitContext,
                     timings: dict[str, float], data: InteractionData) -> None:
    """Replace each trainable component by one trained on train + validation for the number of
    epochs its validation run found best (no early stopping: nothing is held out any more)."""
    from dataclasses import replace as dc_replace

    refit_split = dc_replace(split, train=split.history("test"),
                             valid_target=np.full(len(split.valid_target), -1, dtype=split.valid_target.dtype))
    ctx.stage = "refit"
    for name, old in list(components.items()):
        best = int((getattr(old, "fit_info", None) or {}).get("best_epoch") or 0)
        if not old.trainable or best <= 0:
            continue
        fresh = build_component(name, dc_replace(cfg, epochs=best, seq_epochs=best), data.n_users, data.n_items, knowledge)
        t = time.perf_counter()
        refit_info = fresh.fit(refit_split, ctx)
        fresh.fit_info = {**old.fit_info, "refit": refit_info}  # the validation run's curve stays the record
        timings[f"{name}_refit"] = time.perf_counter() - t
        ctx.log(f"[train] {name}: refit on train + valid for {best} epochs in {timings[f'{name}_refit']:.1f}s")
        components[name] = fresh


def restrict_knowledge(data: InteractionData, relations: Iterable[str]) -> InteractionData:
    """``data`` with only the triples of ``relations`` (category ancestors follow IN_CATEGORY)."""
    from dataclasses import replace as dc_replace

    from recommender.knowledge import PARENT_CATEGORY

    keep = set(relations) | ({PARENT_CATEGORY} if IN_CATEGORY in relations else set())
    ids = [n for n, r in enumerate(data.relations) if r in keep]
    triples = np.asarray(data.item_entity, dtype=np.int64).reshape(-1, 3)
    return dc_replace(data, item_entity=triples[np.isin(triples[:, 1], ids)])


def train(data: InteractionData, config: TrainConfig | None = None, log=print) -> TrainedModel:
    cfg = config or TrainConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    if cfg.kg_relations is not None:
        data = restrict_knowledge(data, cfg.kg_relations)
    split = leave_last_out(data)
    knowledge = Knowledge(len(data.entity_ids), len(data.relations), np.asarray(data.item_entity, dtype=np.int64))
    ctx = FitContext(data.n_users, data.n_items, knowledge, device, cfg.seed, log)
    names = list(dict.fromkeys(list(cfg.components) + list(cfg.fusion)))
    components = {n: build_component(n, cfg, data.n_users, data.n_items, knowledge) for n in names}
    timings: dict[str, float] = {}
    for n, c in components.items():
        t = time.perf_counter()
        c.fit(split, ctx)
        timings[n] = time.perf_counter() - t
        log(f"[train] {n}: fit in {timings[n]:.1f}s")

    metrics: dict[str, dict[str, dict[str, float]]] = {"valid": {}, "test": {}}
    valid_hist, valid_t = split.history("valid"), split.targets("valid")
    valid_users = np.flatnonzero(valid_t >= 0)
    if 0 < cfg.fusion_users < len(valid_users):
        valid_users = np.sort(np.random.default_rng([cfg.seed, 7919]).choice(valid_users, cfg.fusion_users,
                                                                               replace=False))
    normalised = {}
    for n, c in components.items():
        c.prepare(valid_hist)
        metrics["valid"][n] = evaluate(lambda u: c.score(u, [valid_hist[i] for i in u.tolist()]), valid_hist, valid_t)
        if n in cfg.fusion:
            normalised[n] = _normalised_matrix(c, valid_users, valid_hist)
    t = time.perf_counter()
    weights, choice = choose_weights(normalised, valid_users, valid_hist, valid_t, seed=cfg.seed, log=log)
    ablations = {}
    for subset in cfg.fusion_ablations:
        sub = {n: normalised[n] for n in subset}
        w = choose_weights(sub, valid_users, valid_hist, valid_t, seed=cfg.seed, log=log)[0]
        ablations[f"fusion[{'+'.join(subset)}]"] = w
    del normalised
    timings["fusion_search"] = time.perf_counter() - t
    metrics["valid"]["fusion"] = evaluate(
        lambda u: fused_scores(components, weights, u, [valid_hist[i] for i in u.tolist()]), valid_hist, valid_t)
    metrics["valid"]["fusion_choice"] = {"weights": weights.weights, **choice}
    blend = None
    if cfg.cold_blend and cfg.cold_blend in components and len(valid_users):
        t = time.perf_counter()
        no_train = items_without_interactions(split.train, data.n_items)  # never a warm example
        blend = fit_cold_blend(lambda u, h: fused_scores(components, weights, u, h), components[cfg.cold_blend].score,
                               valid_hist, valid_t, data.n_items, exclude=no_train, seed=cfg.seed,
                               component=cfg.cold_blend, fusion_weight=sum(weights.active().values()))
        timings["cold_blend_fit"] = time.perf_counter() - t

    test_hist, test_t = split.history("test"), split.targets("test")
    if cfg.refit:
        refit_components(components, split, cfg, knowledge, ctx, timings, data)
    for c in components.values():
        c.prepare(test_hist)
    for n, c in components.items():
        metrics["test"][n] = evaluate(lambda u: c.score(u, [test_hist[i] for i in u.tolist()]), test_hist, test_t)
    metrics["test"]["fusion"] = evaluate(
        lambda u: fused_scores(components, weights, u, [test_hist[i] for i in u.tolist()]), test_hist, test_t)
    test_cold = items_without_interactions(test_hist, data.n_items)
    if blend is not None and test_cold.any():  # what serving ranks when some items have no interactions
        def served(u):
            hist = [test_hist[i] for i in u.tolist()]
            return exposure_floor(blend.scores(components, weights, u, hist, test_cold), test_cold, cfg.cold_every, hist)

        metrics["test"]["fusion+cold_blend"] = evaluate(served, test_hist, test_t)
    # "served": what TrainedModel.score ranks in the tested state, the figure a shop gets
    metrics["test"]["served"] = dict(metrics["test"].get("fusion+cold_blend") or metrics["test"]["fusion"])
    for name, w in ablations.items():
        metrics["test"][name] = evaluate(
            lambda u: fused_scores(components, w, u, [test_hist[i] for i in u.tolist()]), test_hist, test_t)
        metrics["valid"][name] = {"weights": w.weights}
    for stage in ("valid", "test"):
        for n, m in metrics[stage].items():
            if "weights" in m:
                continue
            log(f"[{stage}] {n:14s} " + " ".join(f"{k} {v:.4f}" for k, v in m.items()))

    history = [list(s) for s in data.sequences] if cfg.deploy_history == "all" else test_hist
    for c in components.values():
        c.prepare(history)
    return TrainedModel(
        user_ids=list(data.user_ids), item_ids=list(data.item_ids), components=components, weights=weights,
        history=[list(h) for h in history], metrics=metrics, params=asdict(cfg), timings=timings,
        entity_ids=list(data.entity_ids), entity_names=list(data.entity_names), relations=list(data.relations),
        item_entity=np.asarray(data.item_entity, dtype=np.int64), cold_blend=blend, curve=ctx.curve,
    )
