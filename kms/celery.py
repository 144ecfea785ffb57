"""The Celery app. Tasks are thin callers of the same service functions the commands use.

Configuration, the beat schedule included, is kms.settings' CELERY_* (one place)."""
import os

from celery import Celery
from celery.signals import worker_process_init

# Entry point (``celery -A kms``): which settings module to load is the one thing that cannot
# come from the settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kms.settings")

app = Celery("kms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _configure_torch(**_):
    # torch ops in a prefork parent hang the children: set threads per child, after the fork.
    from django.conf import settings

    try:
        import torch

        torch.set_num_threads(settings.KMS_TORCH_THREADS)
    except ImportError:
        pass
