"""manage.py write_impressions [--once]: the impression queue's writer as its own process.

The same step as beat's ``write-impressions`` task (``impressions.write_queued``), every
``KMS_IMPRESSIONS_WRITE_SECONDS``: for a deployment without Celery beat, or to give the writer
its own process (``bench/api_load.py`` runs it beside gunicorn when the queue is on)."""
from __future__ import annotations

import os
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from kms.experiments import impressions


class Command(BaseCommand):
    help = "Move queued impressions (lists served) from Redis into the database, continuously or --once."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="drain once and exit")
        parser.add_argument("--nice", type=int, default=10,
                            help="lower this process's CPU priority by N (default 10): on a host it shares with "
                                 "web workers, its bursts every interval yield to requests; 0 keeps the priority")

    def handle(self, *args, **options):
        if not settings.KMS_IMPRESSIONS_QUEUE_URL:
            raise CommandError("KMS_IMPRESSIONS_QUEUE_URL is empty: web processes write their lists themselves")
        if options["once"]:
            self.stdout.write(f"{impressions.write_queued()} lists written")
            return
        if options["nice"] > 0:
            os.nice(options["nice"])
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        interval = settings.KMS_IMPRESSIONS_WRITE_SECONDS
        while not stop:
            started = time.monotonic()
            try:
                impressions.write_queued()
            except Exception as exc:  # the database or Redis away: the lists stay queued
                self.stderr.write(f"write_impressions: {exc!r}; retrying")
                close_old_connections()
            time.sleep(max(0.05, interval - (time.monotonic() - started)))
        impressions.write_queued()  # what was queued before the stop
