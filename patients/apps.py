from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = _("Espace patient")

    def ready(self) -> None:
        # Plugged into mailboxes (a lower app, which never imports this one): the patient
        # box rules join every submission, the reading page shows the patient's side of a
        # conversation, and a delivery to a patient notifies them.
        # Imported here: models are not loaded when apps.py is.
        from mailboxes import hooks
        from mailboxes.models import Mailbox
        from patients import (  # noqa: F401 - archive_sections adds its archive sections
            archive_sections,
            connected_services,
            panels,
            receivers,
            receivers_documents,
            services,
            services_documents,
        )

        hooks.add_submission_rule(services.check_submission)
        # Services connectés: an application the patient revoked may not write to them.
        hooks.add_submission_rule(connected_services.check_submission)
        hooks.add_reading_panel(panels.patient_thread)
        hooks.delivered.connect(
            receivers.on_delivered, sender=Mailbox, dispatch_uid="patients.notify_on_delivery"
        )
        hooks.delivered.connect(
            receivers_documents.on_delivered,
            sender=Mailbox,
            dispatch_uid="patients.file_documents_on_delivery",
        )
        # The patients' own documents are blobs of theirs: the orphan collection judges them.
        hooks.add_blob_kind(services_documents.BLOB_KIND, services_documents.referenced_blobs)
