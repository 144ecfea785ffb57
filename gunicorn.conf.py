"""gunicorn settings, read from the working directory (the repository root) by ``gunicorn kms.wsgi``.

Threaded workers that stamp each request's queue time, so ``kms.shedding.QueueDeadlineMiddleware``
can shed requests that waited past ``KMS_QUEUE_DEADLINE_MS`` instead of serving clients that
have given up. Command-line flags (``-w``, ``--threads``, ``-k``) still override these.
"""
from kms import settings  # the values only (no Django set-up): the environment is read there

worker_class = "kms.shedding.QueueStampingWorker"
threads = settings.GUNICORN_THREADS


def post_worker_init(worker):
    """Load the serving and search indexes before this worker accepts its first connection."""
    from kms.api.serving import warm_up

    warm_up()
