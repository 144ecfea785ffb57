
from django.core.management.base import BaseCommand

from kms.recs import services


def training_table(version) -> str:
    """Component, validation NDCG@20, seconds: what a person reads after training."""
    valid = (version.metrics or {}).get("valid", {})
    test = (version.metrics or {}).get("test", {})
    timings = (version.details or {}).get("timings", {})
    choice = valid.get("fusion_choice") or {}
    lines = [f"{'component':22s} {'valid NDCG@20':>13s} {'test NDCG@20':>12s} {'seconds':>8s}"]
    for name, m in valid.items():
        if "ndcg@20" not in m:
            continue
        seconds = timings.get(name, 0.0) + timings.get(f"{name}_refit", 0.0)
        t = test.get("served" if name == "fusion" else name, {}).get("ndcg@20")
        lines.append(f"{name if name != 'fusion' else 'served (fusion)':22s} {m['ndcg@20']:13.4f} "
                     f"{'' if t is None else f'{t:12.4f}':>12s} {seconds:8.1f}")
    active = {k: round(v, 2) for k, v in (choice.get("weights") or {}).items() if v > 0}
    if choice:
        lines.append(f"fusion: {choice.get('decision')} {active}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Train a model version on the graph store's user–item–entity graph, evaluate and register it."

    def add_arguments(self, parser):
        from recommender.presets import DEFAULT_PRESET, preset_names

        parser.add_argument("--preset", choices=preset_names(), default=None,
                            help=f"named configuration (default {DEFAULT_PRESET}; recommender/presets.py)")
        parser.add_argument("--params", default="{}", help="JSON object of TrainConfig fields overriding the preset")
        parser.add_argument("--no-activate", action="store_true")
        parser.add_argument("--json", action="store_true", help="print the version's full metrics as JSON")

    def handle(self, *args, preset, params, no_activate, json: bool = False, **options):
        import json as json_lib

        params = json_lib.loads(params)
        if preset:
            params["preset"] = preset
        version = services.train_model(params, activate=not no_activate)
        if json:
            self.stdout.write(json_lib.dumps({"version": version.pk, "state": version.state,
                                              "train_seconds": round(version.train_seconds, 1),
                                              "params": version.params, "path": version.path,
                                              "n_users": version.n_users, "n_items": version.n_items,
                                              "n_interactions": version.n_interactions,
                                              "metrics": version.metrics,
                                              "timings": (version.details or {}).get("timings", {})}, indent=2))
            return
        self.stdout.write(f"version {version.pk} ({version.params.get('preset')}): {version.state}, "
                          f"trained in {version.train_seconds:.1f}s on {version.n_users} users, "
                          f"{version.n_items} items, {version.n_interactions} interactions")
        self.stdout.write(training_table(version))
