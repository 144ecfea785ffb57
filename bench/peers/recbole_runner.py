"""Train a RecBole 1.2.1 model on the project's split; validate and test with the project's
evaluator (``recommender.metrics.evaluate``), never RecBole's.

Early stopping: RecBole's own ``Trainer.fit`` loop (eval every epoch, ``stopping_step``
patience), but its ``_valid_epoch`` is replaced by the project's validation NDCG@20 (history =
train items, masked; target = validation item) and its checkpointing by an in-memory copy of the
best state. The per-epoch curve records cumulative *training* seconds (validation scoring time
excluded, which favours the peers in any time comparison) and wall seconds since ``fit`` began.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch

from recommender.metrics import evaluate


def _model_class(name: str):
    from recbole.utils import get_model

    return get_model(name)


def _to_index(token2id: dict[str, int], n: int) -> np.ndarray:
    """Our index k -> RecBole internal id of token str(k) (-1 where RecBole lacks it)."""
    out = np.full(n, -1, dtype=np.int64)
    for k in range(n):
        out[k] = token2id.get(str(k), -1)
    return out


class RecBolePeer:
    def __init__(self, model_name: str, data_dir: Path, name: str, split, config_overrides: dict, log=print,
                 max_fit_seconds: float | None = None, min_epochs: int = 0):
        self.model_name = model_name
        self.min_epochs = min_epochs
        self.max_fit_seconds = max_fit_seconds
        self.data_dir = Path(data_dir)
        self.name = name
        self.split = split
        self.overrides = config_overrides
        self.log = log
        self.sequential = model_name in {"SASRec", "GRU4Rec", "BERT4Rec"}

    # ------------------------------------------------------------------ setup
    def build(self):
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.utils import get_trainer, init_seed

        cfg = {
            "data_path": str(self.data_dir),
            "dataset": self.name,
            "benchmark_filename": ["train", "valid", "test"],
            "device": "cpu",
            "use_gpu": False,
            "seed": 2020,
            "reproducibility": True,
            "show_progress": False,
            "log_wandb": False,
            "state": "WARNING",
            "worker": 0,
            "eval_step": 1,
            "metrics": ["Recall", "NDCG"],
            "topk": [10, 20],
            "valid_metric": "NDCG@20",
            "eval_args": {"mode": "full", "order": "TO", "group_by": "user"},
            "eval_batch_size": 4096,
            "checkpoint_dir": str(self.data_dir / "saved"),
        }
        cfg.update(self.overrides)
        t0 = time.perf_counter()
        config = Config(model=self.model_name, dataset=self.name, config_dict=cfg)
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        model = _model_class(self.model_name)(config, train_data._dataset).to("cpu")
        self.config, self.dataset, self.model = config, dataset, model
        self.train_data, self.valid_data = train_data, valid_data
        self.uid_map = _to_index(dataset.field2token_id[dataset.uid_field], self.split.n_users)
        self.iid_map = _to_index(dataset.field2token_id[dataset.iid_field], self.split.n_items)
        self.trainer_cls = get_trainer(config["MODEL_TYPE"], config["model"])
        self.setup_seconds = time.perf_counter() - t0
        n_params = sum(p.numel() for p in model.parameters())
        self.log(
            f"[{self.model_name}] dataset built: {dataset.user_num - 1} users, {dataset.item_num - 1} items, "
            f"{len(train_data._dataset)} train rows; {n_params} params; trainer {self.trainer_cls.__name__}; "
            f"setup {self.setup_seconds:.1f}s"
        )
        missing = int((self.iid_map < 0).sum())
        if missing:
            self.log(f"[{self.model_name}] note: {missing} items unknown to RecBole score -inf")

    # ---------------------------------------------------------------- scoring
    def score_fn(self, stage: str):
        """users (our indices) -> scores over our items, for the given stage's input."""
        from recbole.data.interaction import Interaction

        model = self.model
        iid_map = torch.as_tensor(self.iid_map)
        known = iid_map >= 0
        cols = iid_map.clamp(min=0)
        hist = self.split.history(stage)
        max_len = self.config["MAX_ITEM_LIST_LENGTH"] if self.sequential else None
        iid_map_np = self.iid_map

        # RecBole 1.2.1's KGIN drops KG edges (node_dropout_rate) even in eval mode; KGIN's
        # reference code scores with no dropout, so switch it off while scoring.
        gcn = getattr(model, "gcn", None)
        node_drop = getattr(gcn, "node_dropout_rate", None)

        def fn(users: torch.Tensor) -> torch.Tensor:
            model.eval()
            if node_drop is not None:
                gcn.node_dropout_rate = 0.0
            try:
                scores = _predict(users)
            finally:
                if node_drop is not None:
                    gcn.node_dropout_rate = node_drop
            out = scores[:, cols].to(torch.float32)
            out[:, ~known] = float("-inf")
            return out

        def _predict(users: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                if self.sequential:
                    seqs = np.zeros((len(users), max_len), dtype=np.int64)
                    lens = np.zeros(len(users), dtype=np.int64)
                    for r, u in enumerate(users.tolist()):
                        h = [int(iid_map_np[i]) for i in hist[u][-max_len:]]
                        h = [x for x in h if x > 0] or [0]
                        seqs[r, : len(h)] = h
                        lens[r] = max(len(h), 1)
                    inter = Interaction(
                        {
                            self.dataset.item_id_list_field: torch.as_tensor(seqs),
                            self.dataset.item_list_length_field: torch.as_tensor(lens),
                        }
                    )
                else:
                    uid = torch.as_tensor(self.uid_map[users.numpy()])
                    inter = Interaction({self.dataset.uid_field: uid})
                return model.full_sort_predict(inter).view(len(users), -1)

        return fn

    def train_fixed(self, epochs: int) -> float:
        """Train for exactly ``epochs`` epochs with no validation (the refit on train + valid,
        with the epoch count early stopping chose); returns training seconds."""
        base = self.trainer_cls

        class FixedTrainer(base):
            def _save_checkpoint(self, epoch, verbose=True, **kwargs):
                pass

        self.config["epochs"] = epochs
        trainer = FixedTrainer(self.config, self.model)
        t0 = time.perf_counter()
        trainer.fit(self.train_data, None, verbose=False, saved=False, show_progress=False)
        secs = time.perf_counter() - t0
        for attr in ("restore_user_e", "restore_item_e", "restore_entity_e"):
            if hasattr(self.model, attr):
                setattr(self.model, attr, None)
        return secs

    def evaluate(self, stage: str) -> dict[str, float]:
        return evaluate(self.score_fn(stage), self.split.history(stage), self.split.targets(stage))

    # --------------------------------------------------------------- training
    def fit(self) -> dict:
        peer = self
        base = self.trainer_cls

        class PeerTrainer(base):
            def __init__(self, config, model):
                super().__init__(config, model)
                self.curve: list[tuple[float, float, int, float]] = []  # (train s, wall s, epoch, ndcg@20)
                self.train_seconds = 0.0
                self.best_snapshot = None
                self.best_epoch = -1
                self.stopped_by = "max_epochs"
                self._epoch = -1
                self._wall0 = time.perf_counter()

            def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
                t = time.perf_counter()
                loss = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
                self.train_seconds += time.perf_counter() - t
                self._epoch = epoch_idx
                self._last_loss = float(sum(loss)) if isinstance(loss, tuple) else float(loss)
                return loss

            def _valid_epoch(self, valid_data, show_progress=False):
                res = peer.evaluate("valid")
                score = res["ndcg@20"]
                wall = time.perf_counter() - self._wall0
                self.curve.append((self.train_seconds, wall, self._epoch, score))
                peer.log(
                    f"[{peer.model_name}] epoch {self._epoch:3d} loss {self._last_loss:.4f} "
                    f"valid ndcg@20 {score:.5f} recall@20 {res['recall@20']:.4f} "
                    f"train {self.train_seconds:7.1f}s wall {wall:7.1f}s"
                )
                if self._epoch + 1 < peer.min_epochs:
                    # Warm-up: the patience counter only starts once min_epochs are done (so a
                    # lucky early epoch cannot end training at min_epochs).
                    self.cur_step = 0
                if peer.max_fit_seconds is not None and wall >= peer.max_fit_seconds:
                    # Wall-time budget spent: keep this epoch if it is the best, then make
                    # RecBole's early_stopping() stop (no improvement + exhausted patience).
                    if score >= self.best_valid_score:
                        self._save_checkpoint(self._epoch)
                        self.best_valid_score = score
                        self.best_valid_result = res
                    self.cur_step = max(self.cur_step, self.stopping_step)
                    self.stopped_by = "time_budget"
                    peer.log(f"[{peer.model_name}] wall budget {peer.max_fit_seconds:.0f}s reached; stopping")
                    return float("-inf"), res  # the curve above keeps the real score
                return score, res

            def _save_checkpoint(self, epoch, verbose=True, **kwargs):
                m = self.model
                snap = {"state": copy.deepcopy(m.state_dict())}
                if hasattr(m, "A_in"):  # KGAT's attentive adjacency is not a parameter
                    snap["A_in"] = m.A_in.clone()
                self.best_snapshot = snap
                self.best_epoch = epoch

        trainer = PeerTrainer(self.config, self.model)
        t0 = time.perf_counter()
        trainer.fit(self.train_data, self.valid_data, verbose=False, saved=True, show_progress=False)
        fit_wall = time.perf_counter() - t0
        if trainer.best_snapshot is not None:
            self.model.load_state_dict(trainer.best_snapshot["state"])
            if "A_in" in trainer.best_snapshot:
                self.model.A_in = trainer.best_snapshot["A_in"]
        for attr in ("restore_user_e", "restore_item_e", "restore_entity_e"):
            if hasattr(self.model, attr):
                setattr(self.model, attr, None)
        curve = trainer.curve
        if trainer.stopped_by != "time_budget" and len(curve) < self.config["epochs"]:
            trainer.stopped_by = "early_stopping"
        best = max(curve, key=lambda c: c[3]) if curve else (0.0, 0.0, -1, 0.0)
        return {
            "train_seconds": trainer.train_seconds,
            "fit_wall_seconds": fit_wall,
            "setup_seconds": self.setup_seconds,
            "seconds_to_best_valid": best[0],
            "wall_seconds_to_best_valid": best[1],
            "best_epoch": best[2],
            "epochs_run": len(curve),
            "stopped_by": trainer.stopped_by,
            "max_fit_seconds": self.max_fit_seconds,
            "min_epochs": self.min_epochs,
            "valid_curve": [[round(c[0], 3), round(c[3], 6)] for c in curve],
            "valid_curve_wall": [[round(c[1], 3), round(c[3], 6)] for c in curve],
        }
