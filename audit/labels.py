"""The journal's action codes and details in words, for the staff reading it in the admin.

The rows keep stable English codes (``message.delivered``); what the admin shows is the
label, in the reader's language. Every code recorded anywhere has a label here:
``audit/tests/test_labels.py`` reads the code for ``record(`` and ``record_many(`` and
fails on a code without one. A code this version does not know (written by a newer
one) is shown as it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

ACTION_LABELS: Final[dict[str, Promise]] = {
    # Accounts and logins
    "account.created": _("Compte créé"),
    "account.activation_link_issued": _("Lien d'activation émis"),
    "account.activated": _("Compte activé"),
    "account.otp_enrolled": _("Application d'authentification enregistrée"),
    "account.second_factor_reset": _("Second facteur réinitialisé"),
    "account.password_changed": _("Mot de passe changé"),
    "account.email_change_requested": _("Changement d'adresse de contact demandé"),
    "account.email_changed": _("Adresse de contact changée"),
    "account.code_refused": _("Code de confirmation refusé"),
    "account.step_up_refused": _("Confirmation d'identité refusée"),
    "account.eligibility_override": _("Éligibilité accordée par l'équipe"),
    "account.adeli_to_rpps": _("Passage d'ADELI à RPPS"),
    "account.suspended": _("Compte suspendu"),
    "account.reactivated": _("Compte réactivé"),
    "account.closed": _("Compte fermé"),
    "account.passkey_added": _("Clé d'accès ajoutée"),
    "account.passkey_renamed": _("Clé d'accès renommée"),
    "account.passkey_removed": _("Clé d'accès supprimée"),
    "account.passkey_refused": _("Clé d'accès refusée"),
    "account.passkey_confirmed": _("Session confirmée par clé d'accès"),
    "account.backup_codes_regenerated": _("Codes de secours renouvelés"),
    "account.session_ended": _("Session fermée par le titulaire"),
    "account.sessions_ended": _("Toutes les sessions fermées par le titulaire"),
    "login.succeeded": _("Connexion réussie"),
    "login.failed": _("Échec de connexion"),
    "login.refused": _("Connexion refusée"),
    "login.holder_alerted": _("Titulaire prévenu d'attaques sur son compte"),
    "login.psc_code_asked": _("Pro Santé Connect : niveau insuffisant seul, code demandé"),
    "login.psc_unknown": _("Pro Santé Connect : identifiant national sans compte"),
    "login.psc_failed": _("Échec de connexion par Pro Santé Connect"),
    "logout": _("Déconnexion"),
    # Mailboxes and their users
    "mailbox.created": _("Boîte créée"),
    "mailbox.updated": _("Boîte modifiée"),
    "mailbox.closed": _("Boîte fermée"),
    "mailbox.reopened": _("Boîte rouverte"),
    "mailbox.liste_rouge": _("Liste rouge changée"),
    "entries.marked_read": _("Messages marqués comme lus (sélection)"),
    "entries.marked_unread": _("Messages marqués comme non lus (sélection)"),
    "entries.flagged": _("Messages marqués suivis (sélection)"),
    "entries.unflagged": _("Suivi retiré (sélection)"),
    "entries.deleted": _("Messages supprimés définitivement (sélection)"),
    "folder.marked_read": _("Dossier entièrement marqué comme lu"),
    "message.mdn_recorded": _("Accusé de lecture reçu (porté sur le suivi du message)"),
    "message.source_viewed": _("En-têtes et source d'un message consultés"),
    "app_password.created": _("Mot de passe d'application créé"),
    "app_password.used": _("Connexion d'un logiciel (mot de passe d'application)"),
    "app_password.refused": _("Connexion d'un logiciel refusée"),
    "app_password.revoked": _("Mot de passe d'application révoqué"),
    "mailbox.signature_set": _("Signature modifiée"),
    "mailbox.auto_reply_set": _("Réponse automatique d'absence modifiée"),
    "mailbox.rule_added": _("Règle de tri ajoutée"),
    "mailbox.rule_moved": _("Règle de tri déplacée"),
    "mailbox.rule_deleted": _("Règle de tri supprimée"),
    "mailbox.rules_applied": _("Règles de tri appliquées à la boîte de réception"),
    "message.auto_reply_refused": _("Réponse automatique refusée par la charte"),
    "account.mail_alert_set": _("Alerte de nouveaux messages modifiée"),
    "account.mail_alert_sent": _("Alerte de nouveaux messages envoyée"),
    "mailbox.inactivity_warned": _("Titulaire prévenu de l'inactivité de la boîte"),
    "mailbox.inactivity_objection": _("Opposition à la fermeture pour inactivité"),
    "mailbox.inactivity_exempted": _("Boîte exemptée de la fermeture pour inactivité"),
    "mailbox.inactivity_exemption_removed": _("Exemption d'inactivité retirée"),
    "membership.granted": _("Accès à une boîte partagée accordé"),
    "membership.changed": _("Accès à une boîte partagée modifié"),
    "membership.revoked": _("Accès à une boîte partagée retiré"),
    "api_agreement.granted": _("Accord du titulaire pour l'API"),
    "api_agreement.withdrawn": _("Accord pour l'API retiré"),
    "api_token.created": _("Jeton d'API créé"),
    "api_token.revoked": _("Jeton d'API révoqué"),
    "api_token.used": _("Jeton d'API utilisé"),
    # Messages
    "message.submitted": _("Message envoyé"),
    "message.received": _("Message reçu d'un autre opérateur"),
    "message.resent": _("Message renvoyé par l'opérateur pair (déjà reçu)"),
    "message.notice": _("Avis de la plateforme envoyé"),
    "message.refused": _("Envoi refusé"),
    "message.scanned": _("Message analysé par l'antivirus"),
    "message.queued": _("Distribution mise en file d'attente"),
    "message.scanning": _("Distribution en cours d'analyse"),
    "message.delivered": _("Message distribué"),
    "message.deferred": _("Distribution différée"),
    "message.bounced": _("Message non distribué"),
    "message.quarantined": _("Message mis en quarantaine"),
    "message.first_opened": _("Message ouvert pour la première fois"),
    "message.dsn_sent": _("Avis de non-remise envoyé"),
    "message.mdn_sent": _("Accusé de lecture envoyé"),
    "message.report_dsn": _("Avis de non-remise reçu"),
    "message.report_mdn": _("Accusé de lecture reçu"),
    "delivery.retried": _("Distribution relancée par l'équipe"),
    "delivery.abandoned": _("Distribution abandonnée par l'équipe"),
    "attachment.downloaded": _("Pièce jointe téléchargée"),
    "quarantine.released": _("Message libéré de la quarantaine"),
    "quarantine.deleted": _("Message en quarantaine supprimé"),
    # Folders
    "folder.created": _("Dossier créé"),
    "folder.renamed": _("Dossier renommé"),
    "folder.deleted": _("Dossier supprimé"),
    "folders.recounted": _("Compteurs des dossiers recalculés"),
    "entries.moved": _("Messages déplacés"),
    "entries.trashed": _("Messages mis à la corbeille"),
    "entries.restored": _("Messages restaurés de la corbeille"),
    "trash.emptied": _("Corbeille vidée"),
    "mailbox.erased": _("Contenu d'une boîte fermée effacé"),
    # Patients
    "patient.auto_created": _("Espace patient créé"),
    "patient.notified": _("Patient prévenu d'un nouveau message"),
    "patient.preferences_changed": _("Préférences du patient changées"),
    "patient.conversation_closed": _("Conversation avec le patient close"),
    "patient.family_link_created": _("Représentant légal rattaché à un enfant"),
    "patient.family_link_revoked": _("Rattachement familial révoqué"),
    "patient.family_link_ended": _("Rattachement familial terminé (majorité)"),
    "patient.family_switched": _("Changement d'espace (représentant légal)"),
    "patient.family_acted": _("Action du représentant légal dans l'espace de l'enfant"),
    "patient.appointment_received": _("Rendez-vous reçu dans l'agenda du patient"),
    "patient.appointment_updated": _("Rendez-vous du patient modifié par le professionnel"),
    "patient.appointment_cancelled": _("Rendez-vous du patient annulé par le professionnel"),
    "patient.appointment_answered": _("Réponse du patient à un rendez-vous"),
    "patient.appointment_reminded": _("Patient prévenu d'un rendez-vous proche"),
    "patient.agenda_exported": _("Agenda du patient exporté (.ics)"),
    "patient.service_allowed": _("Service connecté autorisé par le patient"),
    "patient.service_revoked": _("Service connecté retiré par le patient"),
    "patient.archive_downloaded": _("Archive de ses données téléchargée par le patient"),
    "patient.space_closed": _("Espace fermé à la demande du patient"),
    "patient.space_erased": _("Espace fermé effacé (fin de la durée de conservation)"),
    "patient.documents_filed": _("Documents reçus classés dans « Mes documents »"),
    "patient.document_added": _("Document ajouté par le patient"),
    "patient.document_refused": _("Document du patient refusé par l'antivirus"),
    "patient.document_hidden": _("Document masqué par le patient"),
    "patient.document_shown": _("Document de nouveau affiché par le patient"),
    # Trust space, directory, charter
    "listeblanche.imported": _("Liste blanche importée"),
    "listeblanche.refused": _("Import de la liste blanche refusé"),
    "directory.import": _("Import de l'annuaire"),
    "charter.recipient_exception_granted": _("Dérogation au nombre de destinataires accordée"),
    "charter.recipient_exception_revoked": _("Dérogation au nombre de destinataires révoquée"),
    "abuse.reported": _("Message signalé comme abusif"),
    "abuse.decided": _("Décision sur un signalement"),
    # The admin and the journal itself
    "admin.added": _("Ajout dans l'administration"),
    "admin.changed": _("Modification dans l'administration"),
    "admin.deleted": _("Suppression dans l'administration"),
    "admin.action": _("Action dans l'administration"),
    "audit.purged": _("Journal purgé (durée de conservation)"),
    "audit.anchor_restarted": _("Ancrage externe du journal repris"),
}

# The detail keys staff meet most; another key is shown as it is written.
KEY_LABELS: Final[dict[str, Promise]] = {
    "deliveries": _("distributions"),
    "mailboxes": _("destinataires"),
    "recipients": _("destinataires"),
    "recipient": _("destinataire"),
    "remote": _("opérateur destinataire"),
    "verdict": _("verdict"),
    "parts": _("parties analysées"),
    "reason": _("motif"),
    "fields": _("champs modifiés"),
    "forced": _("forcé"),
    "domains": _("domaines"),
    "added": _("ajoutés"),
    "removed": _("retirés"),
    "kind": _("nature"),
    "status": _("statut"),
    "read": _("lues"),
    "updated": _("modifiées"),
    "deactivated": _("désactivées"),
    "rejected": _("rejetées"),
    "original": _("message d'origine"),
    "report": _("avis"),
    "role": _("rôle"),
    "scope": _("portée"),
    "count": _("nombre"),
    "decision": _("décision"),
    "identifier": _("identifiant"),
    "method": _("moyen de connexion"),
    "level": _("niveau d'authentification"),
    "acr": _("niveau déclaré (acr)"),
    "passkey": _("clé d'accès"),
}

# A value longer than this is cut when shown (the row itself keeps it whole).
MAX_VALUE = 300
MAX_ITEMS = 20


def action_label(code: str) -> str:
    """The action in words ("" stays ""; an unknown code is shown as it is)."""
    label = ACTION_LABELS.get(code)
    return str(label) if label is not None else code


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(_("oui") if value else _("non"))
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        shown = [_value(v) for v in value[:MAX_ITEMS]]
        more = len(value) - len(shown)
        return ", ".join(shown) + (f" (+{more})" if more > 0 else "")
    if isinstance(value, Mapping):
        return "; ".join(f"{_key(k)} : {_value(v)}" for k, v in value.items())
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…"


def _key(key: Any) -> str:
    label = KEY_LABELS.get(str(key))
    return str(label) if label is not None else str(key)


def data_lines(data: Any) -> Iterator[tuple[str, str]]:
    """The details of an event as (key, value) lines, in words, never raw JSON."""
    if not isinstance(data, Mapping):
        if data not in (None, "", [], {}):
            yield "", _value(data)
        return
    for key, value in data.items():
        yield _key(key), _value(value)
