"""One settings module, read from the environment, with zero-setup defaults.

No variables set: SQLite, Celery tasks run eagerly, and the graph store is a local ArcadeDB
server the project starts itself under KMS_DATA_DIR. Production sets DATABASE_URL,
CELERY_BROKER_URL, NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD/NEO4J_DATABASE and DJANGO_SECRET_KEY.
"""
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
# torch's OpenMP threads busy-wait between parallel regions; where the cores are shared (web
# workers, ingestion, another job) that spinning made training 5-20x slower (bench/RESULTS.md,
# "OpenMP spinning"; bench/propagation.py). Settings load before anything imports torch; an operator's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
DATA_DIR = Path(os.environ.get("KMS_DATA_DIR", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)
DATASETS_DIR = Path(os.environ.get("KMS_DATASETS_DIR", BASE_DIR.parent / "shared" / "datasets"))


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("KMS_REQUIRE_SECRET", False):
        raise RuntimeError("DJANGO_SECRET_KEY must be set")
    SECRET_KEY = "insecure-local-development-key-set-DJANGO_SECRET_KEY-in-production"
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "kms.catalogue",
    "kms.events",
    "kms.knowledge",
    "kms.recs",
    "kms.api",
    "kms.curation",
    "kms.experiments",
]

MIDDLEWARE = [
    "kms.shedding.QueueDeadlineMiddleware",  # first: a request past its queue deadline costs nothing more
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kms.urls"
WSGI_APPLICATION = "kms.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "kms" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'kms.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    # take the write lock when a transaction begins: two writers (a web request, the impression
    # flusher) then wait for each other instead of failing a read-to-write upgrade with "database is locked"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# --- Celery: eager without a broker (zero-setup), real workers with CELERY_BROKER_URL -------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Unacknowledged tasks of a killed worker are redelivered after this many seconds (Redis).
# Chunk tasks take seconds; training runs on its own queue with a solo pool.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("KMS_VISIBILITY_TIMEOUT", "600"))}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ROUTES = {"kms.recs.tasks.*": {"queue": "training"}}
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Served lists (kms/experiments) are buffered per process and handed on in batches at least this
# often (to the queue, or to the database without one).
KMS_IMPRESSIONS_FLUSH_SECONDS = float(os.environ.get("KMS_IMPRESSIONS_FLUSH_SECONDS", "2"))
# How often the queue's writer (beat's write-impressions, `manage.py write_impressions`) moves the
# queued lists into the database. Feedback that needs its list does not wait for it: the web
# process drains the queue itself before attributing.
# 10 s: open-loop p99 at 100 req/s 1.01x recording off, against 1.18x at 2 s (bench/RESULTS.md).
KMS_IMPRESSIONS_WRITE_SECONDS = float(os.environ.get("KMS_IMPRESSIONS_WRITE_SECONDS", "10"))
# The one beat schedule. "flush-graph-outbox" is the event sweep (interactions not yet in the
# graph); "deliver-graph-outbox" applies the outbox (curation edits, erasures, deletions).
CELERY_BEAT_SCHEDULE = {
    "retrain-when-enough-new-data": {"task": "kms.recs.tasks.maybe_retrain", "schedule": 3600.0},
    "flush-graph-outbox": {"task": "kms.knowledge.tasks.flush_graph_outbox", "schedule": 30.0},
    "dispatch-pending-jobs": {"task": "kms.knowledge.tasks.dispatch_pending_jobs", "schedule": 30.0},
    "deliver-graph-outbox": {"task": "kms.curation.tasks.deliver_graph_outbox", "schedule": 15.0},
    # clicks/carts/purchases whose list was not yet in the database when they arrived (kms/experiments)
    "attribute-feedback": {"task": "kms.experiments.tasks.attribute_pending_feedback", "schedule": 30.0},
    "write-impressions": {"task": "kms.experiments.tasks.write_impressions",
                          "schedule": KMS_IMPRESSIONS_WRITE_SECONDS},
}
# Threads per worker process for torch (set after the fork; torch in a prefork parent hangs the children).
KMS_TORCH_THREADS = max(1, int(os.environ.get("KMS_TORCH_THREADS", "1")))
# The periodic retrain runs when at least this many new events or curated facts arrived.
KMS_RETRAIN_MIN_NEW = int(os.environ.get("KMS_RETRAIN_MIN_NEW", "500"))

# --- Graph store ------------------------------------------------------------------------------
KMS_GRAPH = {
    "URI": os.environ.get("NEO4J_URI", ""),  # empty: the local ArcadeDB server under DATA_DIR
    "USER": os.environ.get("NEO4J_USER", "neo4j"),
    "PASSWORD": os.environ.get("NEO4J_PASSWORD", ""),
    "DATABASE": os.environ.get("NEO4J_DATABASE", "") or None,
    "LOCAL_ROOT": DATA_DIR / "arcadedb",
    "BATCH_SIZE": int(os.environ.get("KMS_GRAPH_BATCH_SIZE", "500")),
    # JVM options of the local ArcadeDB server; None: graph.server.DEFAULT_JAVA_OPTS (serial GC)
    "JAVA_OPTS": os.environ.get("KMS_ARCADEDB_JAVA_OPTS") or None,
}
KMS_MODELS_DIR = DATA_DIR / "models"  # model versions (one directory each)
KMS_NLP_DIR = DATA_DIR / "nlp"  # trained NLP artefacts (manage.py train_nlp)
# Load shedding (kms/shedding.py): a request that waited longer than this in the server's queue
# is answered 503 + Retry-After at once; 0 turns it off.
KMS_QUEUE_DEADLINE_MS = float(os.environ.get("KMS_QUEUE_DEADLINE_MS", "2000"))
# The read hot path's shared cache (kms/recs/serving_cache.py: users' histories, generation
# counters): a Redis URL; default the broker's when that is Redis; empty: off (histories are read
# from the database on every request, which is right across processes without a shared store).
KMS_SERVING_REDIS_URL = os.environ.get(
    "KMS_SERVING_REDIS_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
# Online evaluation (kms/experiments): a click, cart or purchase without a recommendation_id is
# credited to the same user's latest list that showed the item within this many hours (the lists
# served are buffered per process: KMS_IMPRESSIONS_FLUSH_SECONDS, above the beat schedule).
KMS_ATTRIBUTION_WINDOW_HOURS = float(os.environ.get("KMS_ATTRIBUTION_WINDOW_HOURS", "24"))
# Where the web processes hand their buffered lists to a writer outside them (kms/experiments/
# impressions.py, "the queue"): a Redis URL, default the serving cache's; empty: each web process
# writes its lists to the database itself. Beat's write-impressions task (or `manage.py
# write_impressions`) is the writer; without one, web processes drain a long queue themselves.
KMS_IMPRESSIONS_QUEUE_URL = os.environ.get("KMS_IMPRESSIONS_QUEUE_URL", KMS_SERVING_REDIS_URL)
# Off: responses keep their recommendation_id and positions, but no list is stored (no attribution,
# no experiment metrics); for shops that do not evaluate online, and for measuring the recording's cost.
KMS_RECORD_IMPRESSIONS = env_bool("KMS_RECORD_IMPRESSIONS", True)
# Threads per gunicorn worker (gunicorn.conf.py reads it from here).
GUNICORN_THREADS = int(os.environ.get("GUNICORN_THREADS", "4"))

# --- API access ---------------------------------------------------------------------------------
# Catalogue reads (products, search, popular, similar, the product graph) are open to anyone
# unless KMS_PUBLIC_READ=0; customer data (users, a user's details, events and
# recommendations, personalised search, user nodes of the graph) needs a read key unless
# KMS_PUBLIC_CUSTOMER_READ=1. Writes always need a write key.
KMS_PUBLIC_READ = env_bool("KMS_PUBLIC_READ", True)
KMS_PUBLIC_CUSTOMER_READ = env_bool("KMS_PUBLIC_CUSTOMER_READ", False)

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "kms.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["kms.api.auth.ReadOnlyOrWriteScope"],
    "DEFAULT_THROTTLE_CLASSES": ["kms.api.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": os.environ.get("KMS_API_RATE", "100000/min")},
    "EXCEPTION_HANDLER": "kms.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": None,
    "DEFAULT_RENDERER_CLASSES": ["kms.api.renderers.FastJSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "kms API",
    "DESCRIPTION": "Knowledge-graph-centred search and recommendation for e-commerce.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "kms.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler",
                    "formatter": "json" if env_bool("KMS_JSON_LOGS") else "plain"}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("KMS_LOG_LEVEL", "INFO")},
    "loggers": {"neo4j": {"level": "WARNING"}},
}
