"""Webmail URLs, under /messagerie/. Names start with ``webmail_`` (the include has no namespace)."""

from django.urls import path

from mailboxes.views import (
    attachments,
    compose,
    compose_xdm,
    contacts,
    folders,
    messages,
    preferences,
    reading,
    sharing,
    triage,
)

urlpatterns = [
    path("", messages.webmail_home, name="webmail_home"),
    # Folders and search
    path("dossier/<int:folder_id>/", messages.folder_view, name="webmail_folder"),
    path(
        "dossier/<int:folder_id>/renommer/",
        folders.rename_folder_view,
        name="webmail_folder_rename",
    ),
    path(
        "dossier/<int:folder_id>/supprimer/",
        folders.delete_folder_view,
        name="webmail_folder_delete",
    ),
    path("bal/<int:mailbox_id>/", messages.mailbox_view, name="webmail_mailbox"),
    # Triage: a selection's actions, a whole folder read, new mail, results by patient
    path("bal/<int:mailbox_id>/selection/", triage.bulk_view, name="webmail_bulk"),
    path(
        "dossier/<int:folder_id>/tout-lu/",
        triage.mark_folder_read_view,
        name="webmail_folder_read",
    ),
    path("dossier/<int:folder_id>/nouveaux/", triage.new_mail_view, name="webmail_new_mail"),
    path("bal/<int:mailbox_id>/patients/", triage.patients_view, name="webmail_patients"),
    path(
        "bal/<int:mailbox_id>/patients/<str:ins>/",
        triage.patient_results_view,
        name="webmail_patient_results",
    ),
    path(
        "bal/<int:mailbox_id>/dossiers/", folders.create_folder_view, name="webmail_folder_create"
    ),
    # Shared and delegated boxes: members, delegations, access journal
    path("bal/<int:mailbox_id>/membres/", sharing.members_view, name="webmail_members"),
    path(
        "bal/<int:mailbox_id>/membres/<int:membership_id>/modifier/",
        sharing.member_change_view,
        name="webmail_member_change",
    ),
    path(
        "bal/<int:mailbox_id>/membres/<int:membership_id>/retirer/",
        sharing.member_revoke_view,
        name="webmail_member_revoke",
    ),
    path("bal/<int:mailbox_id>/journal/", sharing.journal_view, name="webmail_journal"),
    path("bal/<int:mailbox_id>/recherche/", messages.search_view, name="webmail_search"),
    path(
        "bal/<int:mailbox_id>/recherche/<str:search_id>/",
        messages.search_results_view,
        name="webmail_search_results",
    ),
    path(
        "bal/<int:mailbox_id>/corbeille/vider/",
        messages.empty_trash_view,
        name="webmail_empty_trash",
    ),
    path("bal/<int:mailbox_id>/ecrire/", compose.compose_new_view, name="webmail_compose"),
    path(
        "bal/<int:mailbox_id>/ecrire/enregistrer/",
        compose.compose_save_view,
        name="webmail_compose_save",
    ),
    path(
        "bal/<int:mailbox_id>/ecrire/brouillon/",
        compose.compose_keep_view,
        name="webmail_compose_keep",
    ),
    path(
        "bal/<int:mailbox_id>/ecrire/envoyer/",
        compose.compose_send_view,
        name="webmail_compose_send",
    ),
    path(
        "bal/<int:mailbox_id>/ecrire/pj/",
        compose.compose_upload_view,
        name="webmail_compose_upload",
    ),
    # One message (an entry of one of the user's mailboxes)
    path("message/<int:entry_id>/", messages.read_view, name="webmail_read"),
    path(
        "message/<int:entry_id>/accuse-de-lecture/",
        preferences.receipt_view,
        name="webmail_receipt",
    ),
    path("preferences/", preferences.preferences_view, name="webmail_preferences"),
    path("contacts/", contacts.contacts_view, name="webmail_contacts"),
    path("contacts/favori/", contacts.contact_star_view, name="webmail_contact_star"),
    path("contacts/retirer/", contacts.contact_unstar_view, name="webmail_contact_unstar"),
    path("ecrire/", contacts.write_to_view, name="webmail_write_to"),
    path(
        "destinataires/suggestions",
        contacts.recipient_suggestions_view,
        name="webmail_recipient_suggestions",
    ),
    path("preferences/alerte/", preferences.mail_alert_view, name="webmail_mail_alert"),
    path(
        "preferences/<int:mailbox_id>/signature/",
        preferences.signature_view,
        name="webmail_signature",
    ),
    path(
        "preferences/<int:mailbox_id>/absence/",
        preferences.auto_reply_view,
        name="webmail_auto_reply",
    ),
    path(
        "preferences/<int:mailbox_id>/regles/", preferences.rule_add_view, name="webmail_rule_add"
    ),
    path(
        "preferences/<int:mailbox_id>/regles/appliquer/",
        preferences.rules_apply_view,
        name="webmail_rules_apply",
    ),
    path(
        "preferences/<int:mailbox_id>/regles/<int:rule_id>/deplacer/",
        preferences.rule_move_view,
        name="webmail_rule_move",
    ),
    path(
        "preferences/<int:mailbox_id>/regles/<int:rule_id>/supprimer/",
        preferences.rule_delete_view,
        name="webmail_rule_delete",
    ),
    # The holder's agreement that software may use their box through the API
    path(
        "preferences/acces-logiciel/<int:mailbox_id>/",
        preferences.api_agreement_view,
        name="webmail_api_agreement",
    ),
    path(
        "preferences/acces-logiciel/accord/<int:agreement_id>/retirer/",
        preferences.api_agreement_withdraw_view,
        name="webmail_api_agreement_withdraw",
    ),
    path(
        "message/<int:entry_id>/conversation/",
        messages.conversation_view,
        name="webmail_conversation",
    ),
    path("message/<int:entry_id>/source/", attachments.source_view, name="webmail_source"),
    path("message/<int:entry_id>/imprimer/", reading.print_view, name="webmail_print"),
    path("message/<int:entry_id>/en-tetes/", reading.headers_view, name="webmail_headers"),
    path(
        "message/<int:entry_id>/invitation/",
        reading.invitation_answer_view,
        name="webmail_invitation_answer",
    ),
    path("message/<int:entry_id>/image/", messages.remote_image_view, name="webmail_remote_image"),
    path("message/<int:entry_id>/suivi/", messages.flag_view, name="webmail_flag"),
    path("message/<int:entry_id>/non-lu/", messages.mark_unread_view, name="webmail_mark_unread"),
    path("message/<int:entry_id>/deplacer/", messages.move_view, name="webmail_move"),
    path("message/<int:entry_id>/supprimer/", messages.trash_view, name="webmail_trash"),
    path("message/<int:entry_id>/restaurer/", messages.restore_view, name="webmail_restore"),
    path("message/<int:entry_id>/repondre/", compose.reply_view, name="webmail_reply"),
    path(
        "message/<int:entry_id>/pj/<int:index>/", attachments.download_view, name="webmail_download"
    ),
    path(
        "message/<int:entry_id>/pj/<int:index>/apercu/",
        attachments.preview_view,
        name="webmail_preview",
    ),
    path(
        "message/<int:entry_id>/pj/<int:index>/document/<int:number>/",
        attachments.structured_document_view,
        name="webmail_structured_document",
    ),
    # Drafts
    path("brouillon/<int:draft_id>/", compose.draft_view, name="webmail_draft"),
    path(
        "brouillon/<int:draft_id>/enregistrer/", compose.draft_save_view, name="webmail_draft_save"
    ),
    path("brouillon/<int:draft_id>/envoyer/", compose.draft_send_view, name="webmail_draft_send"),
    path(
        "brouillon/<int:draft_id>/supprimer/",
        compose.draft_delete_view,
        name="webmail_draft_delete",
    ),
    path("brouillon/<int:draft_id>/pj/", compose.draft_upload_view, name="webmail_draft_upload"),
    path(
        "brouillon/<int:draft_id>/dossier-patient/",
        compose_xdm.draft_xdm_view,
        name="webmail_draft_xdm",
    ),
    path(
        "brouillon/<int:draft_id>/pj/<int:attachment_id>/",
        compose.draft_attachment_view,
        name="webmail_draft_attachment",
    ),
    path(
        "brouillon/<int:draft_id>/pj/<int:attachment_id>/supprimer/",
        compose.draft_attachment_delete_view,
        name="webmail_draft_attachment_delete",
    ),
]
