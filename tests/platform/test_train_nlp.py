"""The NLP training command trains on the catalogue, saves a versioned artefact and ingestion uses it."""
import pytest
from django.core.management import call_command

from kms.catalogue.services import upsert_products
from kms.knowledge.services import current_ner_dir, get_pipeline


@pytest.mark.django_db
def test_train_nlp_saves_and_activates_an_artefact(settings, tmp_path, scientific_slice, capsys):
    settings.KMS_NLP_DIR = tmp_path / "nlp"
    products, _ = scientific_slice(40)
    upsert_products(products)
    assert current_ner_dir() is None
    call_command("train_nlp", "--n-iter", "1")
    out = capsys.readouterr().out
    assert '"f1"' in out and '"artefact"' in out
    artefact = current_ner_dir()
    assert artefact is not None and (artefact / "meta.json").exists()
    assert "ner" in get_pipeline().pipe_names  # ingestion now runs the trained component
