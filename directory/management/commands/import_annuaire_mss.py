"""python manage.py import_annuaire_mss FILE — the Extraction Correspondance MSSanté."""

from directory.importers import MssImporter
from directory.importers.command import ImportCommand


class Command(ImportCommand):
    help = "Importe l'extraction Correspondance MSSanté (fichier .txt ou .zip)."
    importer_class = MssImporter
