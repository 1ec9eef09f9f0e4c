"""python manage.py import_annuaire_ps FILE — PS_LibreAcces_Personne_activite."""

from directory.importers import PsImporter
from directory.importers.command import ImportCommand


class Command(ImportCommand):
    help = "Importe PS_LibreAcces_Personne_activite (fichier .txt ou .zip)."
    importer_class = PsImporter
