from django.db import models


class ModelVersion(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        TRAINING = "training"
        READY = "ready"
        ACTIVE = "active"
        REJECTED = "rejected"
        FAILED = "failed"

    state = models.CharField(max_length=16, choices=State.choices, default=State.TRAINING)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)  # resolved config, per-component timings
    history = models.JSONField(default=list, blank=True)  # per-epoch loss / validation curve
    # The last ``manage.py evaluate`` on the shop's events (kms/recs/evaluation.py)
    evaluation = models.JSONField(default=dict, blank=True)
    path = models.CharField(max_length=512, blank=True, default="")
    n_users = models.IntegerField(default=0)
    n_items = models.IntegerField(default=0)
    n_interactions = models.IntegerField(default=0)
    train_seconds = models.FloatField(default=0.0)
    message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"v{self.pk} ({self.state})"
