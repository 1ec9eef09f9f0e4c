"""Every write of the messaging core: mailboxes, submission, delivery, folders, drafts.

Views, commands and tasks call these functions and nothing else writes the
mailbox tables. Each function validates its input, writes in one transaction,
records the audit event and only enqueues background work once committed.
One module per concern; callers use the names re-exported here.
"""

from mailboxes.blobs import BlobStoreUnavailable
from mailboxes.services.blobstore import collect_orphan_blobs
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
    MailboxError,
    MembershipError,
    SubmissionError,
    TokenError,
)
from mailboxes.services.folders import (
    create_folder,
    delete_folder,
    empty_trash,
    move_entries,
    rename_folder,
    restore_entries,
    set_flags,
    trash_entries,
)
from mailboxes.services.mailbox import (
    SYSTEM_FOLDERS,
    create_mailbox,
    create_personal_mailbox,
    folder_of,
    propose_address,
)
from mailboxes.services.messages import parse, read_raw, submit_message
from mailboxes.services.pipeline import deliver, deliver_many, scan, sweep
from mailboxes.services.sharing import (
    change_membership,
    grant_membership,
    open_entry,
    receipt_mode,
    record_access,
    record_download,
    record_entries,
    revoke_membership,
    sender_for,
    set_receipt_mode,
)
from mailboxes.services.tokens import (
    agreement_for,
    authenticate_token,
    count_request,
    create_api_token,
    find_token,
    live_agreement,
    purge_idempotency_keys,
    record_api_agreement,
    revoke_api_token,
    withdraw_api_agreement,
)

__all__ = [
    "SYSTEM_FOLDERS",
    "BlobStoreUnavailable",
    "DraftContent",
    "DraftError",
    "FolderError",
    "MailboxError",
    "MembershipError",
    "SubmissionError",
    "TokenError",
    "add_draft_attachment",
    "agreement_for",
    "attach_forwarded",
    "authenticate_token",
    "change_membership",
    "collect_orphan_blobs",
    "count_request",
    "create_api_token",
    "create_folder",
    "create_mailbox",
    "create_personal_mailbox",
    "delete_draft",
    "delete_folder",
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
    "read_draft_attachment",
    "read_raw",
    "receipt_mode",
    "record_access",
    "record_api_agreement",
    "record_download",
    "record_entries",
    "remove_draft_attachment",
    "rename_folder",
    "restore_entries",
    "revoke_api_token",
    "revoke_membership",
    "save_draft",
    "scan",
    "send_draft",
    "sender_for",
    "set_draft_headers",
    "set_flags",
    "set_receipt_mode",
    "submit_message",
    "sweep",
    "trash_entries",
    "withdraw_api_agreement",
]
