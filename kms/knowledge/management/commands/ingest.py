import sys

from django.core.management.base import BaseCommand

from kms.knowledge import services, tasks
from kms.knowledge.models import IngestionJob


def _bar(job: IngestionJob) -> None:
    processed = job.skipped + job.done + job.failed
    width = 30
    filled = int(width * processed / max(job.total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {processed}/{job.total} "
                     f"failed={job.failed} {job.rate:.1f}/s")
    sys.stderr.flush()


class Command(BaseCommand):
    help = "Extract knowledge from products (all, or those given) into facts and the graph store."

    def add_arguments(self, parser):
        parser.add_argument("external_ids", nargs="*")
        parser.add_argument("--force", action="store_true", help="re-extract even unchanged products")
        parser.add_argument("--background", action="store_true", help="queue the job for the workers")

    def handle(self, *args, external_ids, force, background, **options):
        from kms.catalogue.models import Product

        ids = list(Product.objects.filter(external_id__in=external_ids).values_list("id", flat=True)) \
            if external_ids else None
        if background:
            job = tasks.start_ingestion(ids, force=force)
            self.stdout.write(f"queued ingestion job {job.pk}")
            return
        job = services.create_ingestion_job(ids, force=force)
        job = services.run_ingestion_job(job.pk, progress=_bar)
        sys.stderr.write("\n")
        self.stdout.write(f"job {job.pk}: {job.state}, {job.done} extracted, {job.skipped} unchanged, "
                          f"{job.failed} failed, {job.rate:.1f} products/s")
        for err in job.errors[:20]:
            self.stdout.write(f"  {err['product']}: {err['error']}")
        from kms.events.services import push_interactions_to_graph

        pushed = push_interactions_to_graph()
        if pushed:
            self.stdout.write(f"{pushed} pending events written to the graph store")
