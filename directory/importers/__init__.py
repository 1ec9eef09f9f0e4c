"""Annuaire Santé importers: parsing lives in mssante.lib.annuaire, writing here."""

from directory.importers.base import DeactivationGuardError, Importer, Summary
from directory.importers.mss import MssImporter
from directory.importers.ps import PsImporter

__all__ = ["DeactivationGuardError", "Importer", "MssImporter", "PsImporter", "Summary"]
