"""Every write of the messaging core: mailboxes, submission, delivery, folders, drafts.

Views, commands and tasks call these functions and nothing else writes the
mailbox tables. Each function validates its input, writes in one transaction,
records the audit event and only enqueues background work once committed.
One module per concern; callers use the names re-exported here.
"""

from mailboxes.blobs import BlobStoreUnavailable
from mailboxes.services.api import ApiAnswer, send_api_message
from mailboxes.services.blobstore import collect_orphan_blobs
from mailboxes.services.counters import Drift, recount_folders
from mailboxes.services.drafts import (
    DraftContent,
    add_draft_attachment,
    attach_forwarded,
    delete_draft,
    open_draft,
    read_draft_attachment,
    remove_draft_attachment,
    save_draft,
    send_draft,
    set_draft_headers,
)
from mailboxes.services.errors import (
    DraftError,
    FolderError,
    IdempotencyConflict,
    MailboxError,
    MembershipError,
    ScopeError,
    SubmissionError,
    TokenError,
)
from mailboxes.services.folders import (
    create_folder,
    delete_folder,
    empty_trash,
    move_entries,
    open_entry,
    rename_folder,
    restore_entries,
    set_flags,
    trash_entries,
)
from mailboxes.services.lifecycle import DETAIL_FIELDS as MAILBOX_DETAIL_FIELDS
from mailboxes.services.lifecycle import (
    ClosureCause,
    close_mailbox,
    close_mailboxes_of,
    reopen_mailbox,
    resync_directory,
    set_liste_rouge,
    update_mailbox,
)
from mailboxes.services.lifecycle import (
    check_changes as check_mailbox_changes,
)
from mailboxes.services.mailbox import (
    SYSTEM_FOLDERS,
    create_mailbox,
    create_personal_mailbox,
    folder_of,
    propose_address,
)
from mailboxes.services.messages import parse, read_raw, submit_message
from mailboxes.services.pipeline import deliver, deliver_many, requeue_deliveries, scan, sweep
from mailboxes.services.quarantine import (
    QuarantineError,
    delete_quarantined,
    quarantine_message,
    release_quarantined,
)
from mailboxes.services.sharing import (
    change_membership,
    grant_membership,
    receipt_mode,
    record_access,
    record_download,
    record_entries,
    revoke_membership,
    sender_for,
    set_receipt_mode,
)
from mailboxes.services.structured import attach_xdm_package
from mailboxes.services.tokens import (
    agreement_for,
    authenticate_token,
    count_request,
    create_api_token,
    find_token,
    live_agreement,
    purge_idempotency_keys,
    record_api_agreement,
    require_scope,
    revoke_api_token,
    withdraw_api_agreement,
)

__all__ = [
    "MAILBOX_DETAIL_FIELDS",
    "SYSTEM_FOLDERS",
    "ApiAnswer",
    "BlobStoreUnavailable",
    "ClosureCause",
    "DraftContent",
    "DraftError",
    "Drift",
    "FolderError",
    "IdempotencyConflict",
    "MailboxError",
    "MembershipError",
    "QuarantineError",
    "ScopeError",
    "SubmissionError",
    "TokenError",
    "add_draft_attachment",
    "agreement_for",
    "attach_forwarded",
    "attach_xdm_package",
    "authenticate_token",
    "change_membership",
    "check_mailbox_changes",
    "close_mailbox",
    "close_mailboxes_of",
    "collect_orphan_blobs",
    "count_request",
    "create_api_token",
    "create_folder",
    "create_mailbox",
    "create_personal_mailbox",
    "delete_draft",
    "delete_folder",
    "delete_quarantined",
    "deliver",
    "deliver_many",
    "empty_trash",
    "find_token",
    "folder_of",
    "grant_membership",
    "live_agreement",
    "move_entries",
    "open_draft",
    "open_entry",
    "parse",
    "propose_address",
    "purge_idempotency_keys",
    "quarantine_message",
    "read_draft_attachment",
    "read_raw",
    "receipt_mode",
    "record_access",
    "record_api_agreement",
    "record_download",
    "record_entries",
    "recount_folders",
    "release_quarantined",
    "remove_draft_attachment",
    "rename_folder",
    "reopen_mailbox",
    "requeue_deliveries",
    "require_scope",
    "restore_entries",
    "resync_directory",
    "revoke_api_token",
    "revoke_membership",
    "save_draft",
    "scan",
    "send_api_message",
    "send_draft",
    "sender_for",
    "set_draft_headers",
    "set_flags",
    "set_liste_rouge",
    "set_receipt_mode",
    "submit_message",
    "sweep",
    "trash_entries",
    "update_mailbox",
    "withdraw_api_agreement",
]
