"""manage.py experiment start|stop|promote|rollback|list|results: the same services as the API."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from kms.experiments import services
from kms.experiments.models import Experiment
from kms.experiments.results import experiment_results


class Command(BaseCommand):
    help = "A/B tests between model versions: start, stop, promote, roll back, list, results."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start", help="control = the active version; --variant VERSION[:SHARE] (repeatable)")
        start.add_argument("name")
        start.add_argument("--variant", action="append", required=True, help="VERSION or VERSION:SHARE")
        start.add_argument("--control-share", type=float, default=1.0)
        start.add_argument("--traffic", type=float, default=1.0)
        start.add_argument("--metric", default="ctr", choices=Experiment.Metric.values)
        start.add_argument("--k", type=int, default=10)
        start.add_argument("--alpha", type=float, default=0.05)
        start.add_argument("--power", type=float, default=0.8)
        start.add_argument("--baseline", type=float, default=0.05)
        start.add_argument("--mde", type=float, default=0.1, help="relative minimum detectable effect")
        start.add_argument("--reason", default="")
        for name in ("stop", "rollback"):
            p = sub.add_parser(name)
            p.add_argument("experiment", type=int)
            p.add_argument("--reason", default="")
        p = sub.add_parser("promote")
        p.add_argument("experiment", type=int)
        p.add_argument("arm", help="e.g. variant-1")
        p.add_argument("--reason", default="")
        sub.add_parser("list")
        p = sub.add_parser("results")
        p.add_argument("experiment", type=int)

    def handle(self, *args, action, **opts):
        try:
            if action == "start":
                variants = []
                for v in opts["variant"]:
                    version, _, share = v.partition(":")
                    variants.append({"version": int(version), "share": float(share or 1.0)})
                e = services.start_experiment(
                    opts["name"], variants, control_share=opts["control_share"], traffic=opts["traffic"],
                    metric=opts["metric"], k=opts["k"], alpha=opts["alpha"], power=opts["power"],
                    baseline=opts["baseline"], relative_mde=opts["mde"], reason=opts["reason"], via="manage.py")
            elif action == "stop":
                e = services.stop_experiment(opts["experiment"], reason=opts["reason"], via="manage.py")
            elif action == "promote":
                e = services.promote(opts["experiment"], opts["arm"], reason=opts["reason"], via="manage.py")
            elif action == "rollback":
                e = services.rollback(opts["experiment"], reason=opts["reason"], via="manage.py")
            elif action == "list":
                self.stdout.write(json.dumps([services.experiment_dict(e) for e in Experiment.objects.all()],
                                             default=str, indent=1))
                return
            else:
                e = Experiment.objects.filter(pk=opts["experiment"]).first()
                if e is None:
                    raise CommandError(f"no experiment {opts['experiment']}")
                self.stdout.write(json.dumps(experiment_results(e), default=str, indent=1))
                return
        except (services.ExperimentError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(services.experiment_dict(e), default=str, indent=1))
