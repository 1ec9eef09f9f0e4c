"""python manage.py import_patients patients.csv — provision patients and e-mail their links."""

from __future__ import annotations

import csv
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import PatientIdentity, User
from mssante.lib import identifiers as ids
from patients import services

COLUMNS = ["ins", "oid", "birth_name", "first_names", "birth_date", "sex", "birth_place", "email"]
OIDS = {
    "nir": PatientIdentity.Oid.NIR,
    "nia": PatientIdentity.Oid.NIA,
    "test": PatientIdentity.Oid.TEST,
    "demo": PatientIdentity.Oid.DEMO,
}


class Command(BaseCommand):
    help = (
        "Inscrit des patients depuis un CSV (colonnes : "
        + ", ".join(COLUMNS)
        + ") : compte, boîte <INS>@<domaine patient>, lien d'activation envoyé par e-mail."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", help="Fichier CSV (UTF-8, séparateur , ou ;).")
        parser.add_argument(
            "--no-email", action="store_true", help="Ne pas envoyer les liens d'activation."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with open(options["path"], encoding="utf-8-sig", newline="") as handle:
                text = handle.read()
        except OSError as exc:
            raise CommandError(f"Lecture impossible : {exc}") from None
        dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;")
        rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
        missing = [c for c in COLUMNS[:6] if rows and c not in rows[0]]
        if missing:
            raise CommandError("Colonnes manquantes : " + ", ".join(missing))
        created = skipped = failed = 0
        for line, row in enumerate(rows, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                data = self._parse(row)
            except ValueError as exc:
                failed += 1
                self.stderr.write(f"ligne {line} : {exc}")
                continue
            if User.objects.filter(username=data["ins"]).exists():
                skipped += 1
                continue
            try:
                services.provision_patient(**data, send_activation=not options["no_email"])
            except services.PatientError as exc:
                failed += 1
                self.stderr.write(f"ligne {line} : {exc}")
                continue
            created += 1
        self.stdout.write(
            f"{created} patient(s) inscrit(s), {skipped} déjà connu(s), {failed} en erreur."
        )
        if failed:
            raise CommandError(f"{failed} ligne(s) en erreur.")

    def _parse(self, row: dict[str, str]) -> dict[str, Any]:
        try:
            matricule = ids.parse_ins(row["ins"]).matricule
        except ids.IdentifierError as exc:
            raise ValueError(f"INS « {row['ins']} » : {exc}") from None
        oid = OIDS.get(row["oid"].lower(), row["oid"])
        if oid not in PatientIdentity.Oid.values:
            raise ValueError(f"OID inconnu : {row['oid']}")
        try:
            birth = date.fromisoformat(row["birth_date"])
        except ValueError:
            raise ValueError(
                f"date de naissance « {row['birth_date']} » : AAAA-MM-JJ attendu"
            ) from None
        sex = row["sex"].upper()
        if sex not in PatientIdentity.Sex.values:
            raise ValueError(f"sexe « {row['sex']} » : F ou M attendu")
        if not row["birth_name"] or not row["first_names"]:
            raise ValueError("nom de naissance et prénoms obligatoires")
        return {
            "ins": matricule,
            "oid": oid,
            "birth_name": row["birth_name"],
            "first_names": row["first_names"],
            "birth_date": birth,
            "sex": sex,
            "birth_place": row.get("birth_place", ""),
            "email": row.get("email", ""),
            "qualified": True,
        }
