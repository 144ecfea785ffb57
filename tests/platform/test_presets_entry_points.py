"""Every way a shop trains a model builds its configuration from the same preset: `manage.py train`,
the training task, the scheduled retrain (and POST /jobs/train, which queues the task) all train
`best` unless told otherwise, and a version records the preset it was trained with."""
import pytest
from django.core.management import call_command

from kms.recs import services, tasks
from kms.recs.models import ModelVersion
from recommender.presets import PRESETS
from tests.slices import ingest_slice


@pytest.fixture
def trained_configs(monkeypatch):
    """The TrainConfig each training run reached the trainer with. The trainer itself is real
    elsewhere (tests/platform/test_pipeline.py); here it stops right after receiving its config,
    which fails the version, so each run is cheap."""
    import recommender.training

    seen = []

    class Stop(Exception):
        pass

    def capture(data, config, log=print):
        seen.append(config)
        raise Stop

    monkeypatch.setattr(recommender.training, "train", capture)
    return seen, Stop


@pytest.mark.django_db
def test_every_entry_point_trains_the_default_preset(kms_graph, models_dir, trained_configs):
    seen, Stop = trained_configs
    ingest_slice(20)
    with pytest.raises(Stop):
        call_command("train")
    with pytest.raises(Stop):
        tasks.train.apply(kwargs={"version_id": services.start_training().pk}, throw=True)
    with pytest.raises(Stop):
        services.maybe_retrain(min_new=0)
    assert seen == [PRESETS["best"]] * 3
    versions = list(ModelVersion.objects.order_by("pk"))
    assert [v.params.get("preset") for v in versions] == ["best"] * 3
    assert all(v.state == ModelVersion.State.FAILED for v in versions)

    with pytest.raises(Stop):
        call_command("train", "--preset", "fast", "--params", '{"seq_epochs": 2}')
    assert seen[-1].fusion == PRESETS["fast"].fusion and seen[-1].seq_epochs == 2


@pytest.mark.django_db
def test_an_unknown_preset_fails_the_version_with_a_message(kms_graph, models_dir):
    ingest_slice(10)
    with pytest.raises(ValueError, match="unknown preset"):
        services.train_model({"preset": "huge"})
    version = ModelVersion.objects.get()
    assert version.state == ModelVersion.State.FAILED and "unknown preset" in version.message
