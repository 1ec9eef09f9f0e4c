"""The Celery application. Tasks take ids only; see docs/architecture.md."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mssante.settings")

app = Celery("mssante")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
