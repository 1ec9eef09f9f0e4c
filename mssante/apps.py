from typing import Any

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


def _connections_kept_healthy(task: Any = None, **kwargs: Any) -> None:
    """Around every task a worker runs, what Django does around every request (the worker
    keeps its connections, CELERY_DB_REUSE_MAX): close a connection that failed or is past
    CONN_MAX_AGE, and check the others before their next use (CONN_HEALTH_CHECKS), so that
    a connection PostgreSQL dropped (a restart) fails no task after it.

    Not for a task run eagerly: it runs in the caller's process, maybe inside the caller's
    transaction, whose connection must stay as it is."""
    from django.db import close_old_connections, connection

    if task is None or getattr(task.request, "is_eager", False) or connection.in_atomic_block:
        return
    close_old_connections()


class MssanteConfig(AppConfig):
    name = "mssante"
    verbose_name = "MSSanté"
    default = True

    def ready(self) -> None:
        from celery import signals

        signals.task_prerun.connect(_connections_kept_healthy, weak=False)
        signals.task_postrun.connect(_connections_kept_healthy, weak=False)


class PortalAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "mssante.admin.PortalAdminSite"
