"""Settings are declared once: the environment is read only in kms/settings.py, every knob it
reads has a line in the README's configuration table, every ``settings.KMS_*`` the code uses is
declared there, and there is one beat schedule."""
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_DIRS = ("kms", "graph", "nlp", "recommender")
ENV_READ = re.compile(r"os\.environ|getenv\(")
# Entry points that must name the settings module before any settings exist (Django's own
# bootstrap idiom: manage.py, the WSGI module, the Celery app for ``celery -A kms``). They only
# setdefault DJANGO_SETTINGS_MODULE; any other read there fails the test.
BOOTSTRAP = {"manage.py", "kms/wsgi.py", "kms/celery.py"}
BOOTSTRAP_LINE = 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kms.settings")'
# The Django-free recommender sets torch's OpenMP wait policy before torch loads (settings.py does
# the same for Django processes): a process default, not a configuration read.
PROCESS_DEFAULTS = {"recommender/__init__.py": 'os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")'}


def _app_files():
    for top in APP_DIRS:
        yield from sorted((ROOT / top).rglob("*.py"))
    yield from sorted(ROOT.glob("*.py"))  # manage.py, gunicorn.conf.py


def test_environment_is_read_only_in_settings():
    offenders = []
    for path in _app_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel == "kms/settings.py" or "/migrations/" in rel:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            allowed = (rel in BOOTSTRAP and line.strip() == BOOTSTRAP_LINE) or PROCESS_DEFAULTS.get(rel) == line.strip()
            if ENV_READ.search(line) and not allowed:
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "read the environment in kms/settings.py:\n" + "\n".join(offenders)


def _settings_env_names() -> set[str]:
    text = (ROOT / "kms" / "settings.py").read_text()
    return set(re.findall(r'(?:environ\.get|env_bool)\(\s*"([A-Z_]+)"', text))


def test_every_environment_variable_has_a_line_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration"):readme.index("## Commands")]
    names = _settings_env_names()
    assert {"KMS_PUBLIC_READ", "KMS_PUBLIC_CUSTOMER_READ", "KMS_RETRAIN_MIN_NEW", "DATABASE_URL"} <= names
    missing = sorted(n for n in names if f"`{n}`" not in table)
    assert not missing, f"add to the README configuration table: {missing}"


def test_every_kms_setting_the_code_uses_is_declared(settings):
    from kms import settings as declared

    used = set()
    for path in _app_files():
        text = path.read_text()
        used |= set(re.findall(r"settings\.(KMS_[A-Z_]+)", text))
        assert not re.search(r'getattr\(\s*settings\s*,\s*"KMS_', text), f"{path}: declare it in kms/settings.py"
    assert used and not sorted(n for n in used if not hasattr(declared, n))


def test_one_beat_schedule():
    from kms.celery import app
    from kms.settings import CELERY_BEAT_SCHEDULE

    assert app.conf.beat_schedule == CELERY_BEAT_SCHEDULE
    assert {e["task"] for e in CELERY_BEAT_SCHEDULE.values()} >= {
        "kms.recs.tasks.maybe_retrain", "kms.curation.tasks.deliver_graph_outbox",
        "kms.knowledge.tasks.flush_graph_outbox", "kms.knowledge.tasks.dispatch_pending_jobs"}
    writers = [p.relative_to(ROOT).as_posix() for p in _app_files()
               if re.search(r"beat_schedule\s*=|BEAT_SCHEDULE\s*=", p.read_text())]
    assert writers == ["kms/settings.py"], writers


@pytest.mark.parametrize("env,expected", [({"KMS_IMPRESSIONS_WRITE_SECONDS": "10"}, "10.0 2.0"),
                                          ({"KMS_IMPRESSIONS_FLUSH_SECONDS": "3"}, "10.0 3.0")])
def test_the_impression_writer_has_its_own_interval(env, expected):
    """The writer's interval (beat's write-impressions) is its own setting, 10 s by default."""
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if not k.startswith("KMS_IMPRESSIONS_")}
    out = subprocess.run([sys.executable, "-c", "import kms.settings as s; print(s.CELERY_BEAT_SCHEDULE["
                          "'write-impressions']['schedule'], s.KMS_IMPRESSIONS_FLUSH_SECONDS)"],
                         cwd=ROOT, env=base | env, capture_output=True, text=True, check=True)
    assert " ".join(out.stdout.split()) == expected
