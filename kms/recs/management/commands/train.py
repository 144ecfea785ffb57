import json

from django.core.management.base import BaseCommand

from kms.recs import services


class Command(BaseCommand):
    help = "Train a model version on the graph store's user–item–entity graph, evaluate and register it."

    def add_arguments(self, parser):
        parser.add_argument("--params", default="{}", help="JSON object of TrainConfig fields")
        parser.add_argument("--no-activate", action="store_true")

    def handle(self, *args, params, no_activate, **options):
        version = services.train_model(json.loads(params), activate=not no_activate)
        self.stdout.write(json.dumps({"version": version.pk, "state": version.state,
                                      "train_seconds": round(version.train_seconds, 1),
                                      "metrics": version.metrics}, indent=2))
