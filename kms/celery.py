"""The Celery app. Tasks are thin callers of the same service functions the commands use."""
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kms.settings")

app = Celery("kms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _configure_torch(**_):
    # torch ops in a prefork parent hang the children: set threads per child, after the fork.
    try:
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("KMS_TORCH_THREADS", "1"))))
    except ImportError:
        pass
