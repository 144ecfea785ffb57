"""Experiments between model versions, the lists served (impressions) and what they led to."""
from django.db import models


class Experiment(models.Model):
    """Traffic split between model versions by a stable hash of the user id (``assignment.arm_for``).

    The control arm is the version active when the experiment started; at most one experiment runs
    at a time. The planned sample size and the mSPRT's mixing sd are fixed at the start
    (``recommender.online``), so the result page cannot be tuned after looking at it.
    """

    class State(models.TextChoices):
        RUNNING = "running"
        STOPPED = "stopped"
        PROMOTED = "promoted"  # stopped, with a variant's version made the active one
        ROLLED_BACK = "rolled_back"  # stopped, with the control version (re)activated

    class Metric(models.TextChoices):
        CTR = "ctr"
        CART = "cart"
        CONVERSION = "conversion"
        REVENUE = "revenue"

    name = models.CharField(max_length=100, unique=True)
    salt = models.CharField(max_length=32)  # the hash's salt: assignment depends on it and the user id only
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING, db_index=True)
    traffic = models.FloatField(default=1.0)  # share of users in the experiment; the rest get the active version
    metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.CTR)
    k = models.IntegerField(default=10)  # CTR@k: clicks at positions 1..k
    alpha = models.FloatField(default=0.05)
    power = models.FloatField(default=0.8)
    baseline = models.FloatField(default=0.05)  # the primary metric's expected control value (power calculation)
    relative_mde = models.FloatField(default=0.1)  # the smallest relative lift worth detecting
    users_per_arm = models.IntegerField(default=0)  # planned sample size (fixed at the start)
    tau = models.FloatField(default=0.005)  # mSPRT mixing sd (absolute effect), fixed at the start
    started_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    promoted_arm = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"


class Arm(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=32)  # "control", "variant-1", ...
    version = models.ForeignKey("recs.ModelVersion", on_delete=models.PROTECT, related_name="experiment_arms")
    share = models.FloatField()  # relative weight among the arms

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="unique_arm_name")]

    def __str__(self) -> str:
        return f"{self.name}: v{self.version_id}"


class Impression(models.Model):
    """One list served: its id (the response's ``recommendation_id``), who saw it, which version
    and arm made it, and the product ids in position order (one row per list, not per item).
    Written in batches by ``impressions.flush`` from a per-process buffer, never per request."""

    recommendation_id = models.CharField(max_length=32, unique=True)
    # No single-column indexes on user or created_at: every query is by recommendation_id, by
    # (user, created_at) (the composite serves user= too) or by experiment; each index is paid on
    # every flushed list (bench/impressions_cost.py).
    user = models.CharField(max_length=128, blank=True, default="")
    surface = models.CharField(max_length=16)  # recommendations, similar, search
    model_version = models.IntegerField(null=True, blank=True)
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="impressions")
    arm = models.CharField(max_length=32, blank=True, default="")
    items = models.JSONField(default=list)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user", "created_at"])]


class Attribution(models.Model):
    """What a click, cart or purchase is credited to: the list (impression), its model version,
    experiment arm and the item's position. ``pending`` until decided (``attribution.attribute_pending``)."""

    class State(models.TextChoices):
        PENDING = "pending"
        ATTRIBUTED = "attributed"
        UNATTRIBUTED = "unattributed"

    class Method(models.TextChoices):
        ID = "id"  # the event named the list's recommendation_id
        WINDOW = "window"  # the user's latest list showing the item within the window

    interaction = models.OneToOneField("events.Interaction", on_delete=models.CASCADE, related_name="attribution")
    recommendation_id = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    method = models.CharField(max_length=8, choices=Method.choices, blank=True, default="")
    impression = models.ForeignKey(Impression, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="attributions")
    position = models.IntegerField(null=True, blank=True)  # 1-based
    model_version = models.IntegerField(null=True, blank=True)
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="attributions")
    arm = models.CharField(max_length=32, blank=True, default="")
    type = models.CharField(max_length=16)  # click, cart, purchase
    value = models.FloatField(default=0.0)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
