"""Delivery.last_error (a French sentence) becomes a code with its parameters.

The sentences written before are read back into codes (mailboxes.reasons) so that they
show in the reader's language; one that matches none is kept as it was (``legacy``).
A message records the language of the interface it was written in (its DSN and read
receipts come back in it); messages stored before were all answered in French.
"""

import re

from django.db import migrations, models

import mailboxes.models

BATCH = 1000

# The sentences the code wrote, in French, and the English one a request in English
# could write (the pipeline ran eagerly in the request in the embedded default).
EXACT = {
    "Envoi en cours vers le serveur de l'opérateur destinataire.": "sending",
    "message retenu en quarantaine par l'antivirus": "quarantined",
    "virus détecté dans une pièce jointe": "infected",
    "message impossible à analyser par l'antivirus": "unscannable",
    "La boîte du destinataire n'existe plus ou est fermée.": "mailbox_unavailable",
    "The recipient's mailbox no longer exists or is closed.": "mailbox_unavailable",
}
GAVE_UP = re.compile(
    r"Non distribué après (\d+) essai\(s\) en (\d+) heures\. Dernière erreur : (.*)", re.S
)
TOP = [
    (re.compile(r"Serveur de (\S+) injoignable : (.*)", re.S), "unreachable", ("domain", "problem")),
    (re.compile(r"Le serveur de (\S+) a répondu : (.*)", re.S), "remote_reply", ("domain", "reply")),
    (
        re.compile(r"Le serveur de (\S+) signale un échec de distribution : (.*)", re.S),
        "reported_failure",
        ("domain", "diagnostic"),
    ),
    (
        re.compile(r"message retenu en quarantaine par l'antivirus \((.*)\)", re.S),
        "quarantine_notice",
        ("cause",),
    ),
]
PROBLEMS = [
    (re.compile(r"aucun serveur joignable pour (\S+)", re.S), "no_server", ("domain",)),
    (re.compile(r"connexion à (\S+) impossible \((.*)\)", re.S), "connection_failed", ("host", "error")),
    (re.compile(r"(\S+) ne propose pas STARTTLS", re.S), "no_starttls", ("host",)),
    (
        re.compile(
            r"le certificat de (\S+) \((.*)\) n'est pas inscrit sur la liste blanche pour (\S+)",
            re.S,
        ),
        "certificate_not_listed",
        ("host", "subject", "domain"),
    ),
    (re.compile(r"échange avec (\S+) interrompu \((.*)\)", re.S), "interrupted", ("host", "error")),
    (re.compile(r"erreur interne \((.*)\)", re.S), "internal_error", ("error",)),
    (re.compile(r"le domaine (\S+) n'existe pas \(DNS\)", re.S), "no_such_domain", ("domain",)),
    (
        re.compile(r"le domaine (\S+) n'accepte pas de courrier \(MX nul\)", re.S),
        "null_mx",
        ("domain",),
    ),
    (re.compile(r"recherche MX de (\S+) impossible \((.*)\)", re.S), "mx_lookup_failed", ("domain", "error")),
]
NESTED = {"problem": PROBLEMS, "cause": []}

# Back to the French sentences (unapplying the migration).
FRENCH = {
    "sending": "Envoi en cours vers le serveur de l'opérateur destinataire.",
    "quarantined": "message retenu en quarantaine par l'antivirus",
    "infected": "virus détecté dans une pièce jointe",
    "unscannable": "message impossible à analyser par l'antivirus",
    "mailbox_unavailable": "La boîte du destinataire n'existe plus ou est fermée.",
    "unreachable": "Serveur de %(domain)s injoignable : %(problem)s",
    "remote_reply": "Le serveur de %(domain)s a répondu : %(reply)s",
    "reported_failure": "Le serveur de %(domain)s signale un échec de distribution : %(diagnostic)s",
    "quarantine_notice": "message retenu en quarantaine par l'antivirus (%(cause)s)",
    "gave_up": "Non distribué après %(attempts)s essai(s) en %(hours)s heures. Dernière erreur : %(last)s",
    "legacy": "%(text)s",
    "no_server": "aucun serveur joignable pour %(domain)s",
    "connection_failed": "connexion à %(host)s impossible (%(error)s)",
    "no_starttls": "%(host)s ne propose pas STARTTLS",
    "certificate_not_listed": (
        "le certificat de %(host)s (%(subject)s) n'est pas inscrit sur la liste blanche pour %(domain)s"
    ),
    "interrupted": "échange avec %(host)s interrompu (%(error)s)",
    "internal_error": "erreur interne (%(error)s)",
    "no_such_domain": "le domaine %(domain)s n'existe pas (DNS)",
    "null_mx": "le domaine %(domain)s n'accepte pas de courrier (MX nul)",
    "mx_lookup_failed": "recherche MX de %(domain)s impossible (%(error)s)",
}


def _match(text, patterns):
    if text in EXACT:
        return EXACT[text], {}
    for pattern, code, names in patterns:
        found = pattern.fullmatch(text)
        if found:
            params = dict(zip(names, found.groups(), strict=True))
            for name, nested in NESTED.items():
                if name in params:
                    inner_code, inner = _match(params[name], nested)
                    params[name] = {"code": inner_code, **inner}
            return code, params
    return "legacy", {"text": text}


def reason_of(text):
    """(code, params) for a sentence stored in last_error."""
    text = text.strip()
    found = GAVE_UP.fullmatch(text)
    if found:
        last_code, last = reason_of(found.group(3))
        return "gave_up", {
            "attempts": int(found.group(1)),
            "hours": int(found.group(2)),
            "last": {"code": last_code, **last},
        }
    return _match(text, TOP)


def sentence_of(code, params):
    values = {
        k: sentence_of(v.get("code", ""), v) if isinstance(v, dict) else v
        for k, v in (params or {}).items()
    }
    template = FRENCH.get(code)
    if template is None:
        return str(values.get("text", code))
    try:
        return template % values
    except (KeyError, TypeError, ValueError):
        return template


def forwards(apps, schema_editor):
    Delivery = apps.get_model("mailboxes", "Delivery")
    batch = []
    for delivery in Delivery.objects.exclude(last_error="").only("pk", "last_error").iterator(
        chunk_size=BATCH
    ):
        delivery.reason, delivery.reason_params = reason_of(delivery.last_error)
        batch.append(delivery)
        if len(batch) >= BATCH:
            Delivery.objects.bulk_update(batch, ["reason", "reason_params"])
            batch = []
    Delivery.objects.bulk_update(batch, ["reason", "reason_params"])


def backwards(apps, schema_editor):
    Delivery = apps.get_model("mailboxes", "Delivery")
    batch = []
    for delivery in Delivery.objects.exclude(reason="").only("pk", "reason", "reason_params").iterator(
        chunk_size=BATCH
    ):
        delivery.last_error = sentence_of(delivery.reason, delivery.reason_params)
        batch.append(delivery)
        if len(batch) >= BATCH:
            Delivery.objects.bulk_update(batch, ["last_error"])
            batch = []
    Delivery.objects.bulk_update(batch, ["last_error"])


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0007_mailboxes_own_their_tables"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="reason",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="delivery",
            name="reason_params",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="message",
            name="language",
            field=models.CharField(
                blank=True, default=mailboxes.models.interface_language, max_length=16
            ),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(
            model_name="delivery",
            name="last_error",
        ),
    ]
