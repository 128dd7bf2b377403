"""Superset in production: metadata in PostgreSQL, Redis for cache and Celery, Chinese UI.

The cockpit's dashboards are provisioned as code by `citylake cockpit deploy` (issue #7).
"""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = (
    f"postgresql+psycopg2://superset:{os.environ['SUPERSET_DB_PASSWORD']}@postgres:5432/superset"
)
_REDIS = f"redis://:{os.environ['REDIS_PASSWORD']}@redis:6379"

# Both are needed for the Chinese UI, else the page is blank (stack-facts.md).
BABEL_DEFAULT_LOCALE = "zh"
LANGUAGES = {"zh": {"flag": "cn", "name": "简体中文"}, "en": {"flag": "us", "name": "English"}}

CACHE_CONFIG = {
    "CACHE_TYPE": "RedisCache",
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_KEY_PREFIX": "superset_",
    "CACHE_REDIS_URL": f"{_REDIS}/2",
}
DATA_CACHE_CONFIG = CACHE_CONFIG | {"CACHE_KEY_PREFIX": "superset_data_"}


class CeleryConfig:
    broker_url = f"{_REDIS}/3"
    result_backend = f"{_REDIS}/4"
    imports = ("superset.sql_lab", "superset.tasks.scheduler")
    worker_prefetch_multiplier = 1
    task_acks_late = True


CELERY_CONFIG = CeleryConfig
FEATURE_FLAGS = {"DASHBOARD_RBAC": True}
SQLLAB_TIMEOUT = 60
SUPERSET_WEBSERVER_TIMEOUT = 60
