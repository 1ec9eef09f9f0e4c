"""The Celery application. Tasks take ids only; see docs/architecture.md."""

import os
from typing import Any

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mssante.settings")

app = Celery("mssante")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _database_connections_kept_healthy(**kwargs: Any) -> None:
    """Around every task, what Django does around every request (CELERY_DB_REUSE_MAX keeps
    connections): close a connection that failed, that is past CONN_MAX_AGE, and check the
    others before their next use (CONN_HEALTH_CHECKS), so that a connection PostgreSQL
    dropped (a restart) fails no task after it."""
    close_old_connections()
