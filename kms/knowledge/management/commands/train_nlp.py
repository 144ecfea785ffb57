import json

from django.core.management.base import BaseCommand

from kms.knowledge.services import train_nlp_models


class Command(BaseCommand):
    help = ("Train the NLP models (NER, brand, category) on the catalogue by weak supervision, refit the "
            "fact acceptor with curators' approvals/rejections, save a versioned artefact under KMS_DATA_DIR/nlp, make ingestion use it, and print dev-set scores.")

    def add_arguments(self, parser):
        parser.add_argument("--n-iter", type=int, default=6)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--acceptor-only", action="store_true",
                            help="only refit the fact acceptor with the curators' approvals and rejections")

    def handle(self, *args, n_iter, seed, acceptor_only, **options):
        scores = train_nlp_models(n_iter=n_iter, seed=seed, log=lambda m: self.stderr.write(str(m)),
                                  acceptor_only=acceptor_only)
        self.stdout.write(json.dumps({k: v for k, v in scores.items() if k != "per_type"}, indent=2, default=str))
