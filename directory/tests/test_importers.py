"""Importing the two Annuaire Santé extractions."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from directory.importers import MssImporter, PsImporter
from directory.models import DirectoryEntry, ImportRun, Practitioner
from directory.search import TRIGRAM_INDEX
from directory.tests import factories as df
from mssante.lib.annuaire import MSS_HEADER, PS_HEADER, FormatError

pytestmark = pytest.mark.django_db


def mss_file(tmp_path: Path, rows, **kwargs) -> Path:
    return df.write(tmp_path / "mss.txt", MSS_HEADER, rows, **kwargs)


def real_looking_rows() -> list:
    """Six valid lines, one duplicate address and four malformed lines."""
    rows: list = [
        df.mss_line(
            address="helene.duval@medecin.mssante.fr", first_name="Hélène", last_name="DUVAL"
        ),
        df.mss_line(address="jean.dupont@medecin.mssante.fr"),
        df.mss_line(
            address="paul.martin@medecin.mssante.fr", last_name="MARTIN", first_name="Paul"
        ),
        df.mss_line(kind="ORG", address="cardiologie@ch-exemple.mssante.fr", service="Cardiologie"),
        df.mss_line(kind="ORG", address="urgences@ch-exemple.mssante.fr", service="Urgences"),
        df.mss_line(kind="APP", address="labo@ch-exemple.mssante.fr"),
    ]
    rows.append(df.mss_line(address="jean.dupont@medecin.mssante.fr"))  # duplicate, line 8
    rows.append("PER|trop@peu.mssante.fr|de|colonnes")  # line 9
    rows.append(df.mss_line(kind="XXX", address="x@medecin.mssante.fr"))  # line 10
    rows.append(df.mss_line(address="pas une adresse"))  # line 11
    rows.append(df.mss_line(address="sans-arobase.mssante.fr"))  # line 12
    return rows


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
@pytest.mark.parametrize("trailing_pipe", [False, True])
def test_it_imports_the_mss_extraction_with_exact_counts(tmp_path, encoding, trailing_pipe):
    path = mss_file(tmp_path, real_looking_rows(), encoding=encoding, trailing_pipe=trailing_pipe)
    run = MssImporter().run(path)
    assert run.status == ImportRun.Status.SUCCEEDED
    assert (run.read, run.added, run.updated, run.deactivated, run.rejected) == (11, 6, 0, 0, 5)
    assert [r["line"] for r in run.rejected_lines] == [8, 9, 10, 11, 12]
    assert "double" in run.rejected_lines[0]["reason"]
    assert "colonnes" in run.rejected_lines[1]["reason"]
    assert "type de BAL" in run.rejected_lines[2]["reason"]
    assert "adresse" in run.rejected_lines[3]["reason"]
    helene = DirectoryEntry.objects.get(address="helene.duval@medecin.mssante.fr")
    assert helene.first_name == "Hélène"
    assert (helene.city, helene.postcode, helene.department) == ("BORDEAUX", "33000", "33")
    assert helene.last_name_norm == "duval" and "helene" in helene.search_text
    assert helene.profession_label == "Médecin"


def test_it_reads_the_zip_the_extraction_is_distributed_in(tmp_path):
    path = df.write(tmp_path / "mss.zip", MSS_HEADER, [df.mss_line()], zipped=True)
    assert MssImporter().run(path).added == 1


def test_it_detects_duplicates_across_batches(tmp_path):
    rows = [df.mss_line(address=f"a{i}@medecin.mssante.fr") for i in range(5)]
    rows.append(df.mss_line(address="a0@medecin.mssante.fr"))
    run = MssImporter(batch_size=2).run(mss_file(tmp_path, rows))
    assert (run.added, run.rejected) == (5, 1)
    assert run.rejected_lines[0]["line"] == 7


def test_reimporting_the_same_file_changes_nothing(tmp_path):
    path = mss_file(tmp_path, real_looking_rows())
    MssImporter().run(path)
    before = list(DirectoryEntry.objects.order_by("pk").values_list("pk", "updated_at", "active"))
    run = MssImporter().run(path)
    assert (run.added, run.updated, run.unchanged, run.deactivated) == (0, 0, 6, 0)
    after = list(DirectoryEntry.objects.order_by("pk").values_list("pk", "updated_at", "active"))
    assert after == before


def test_a_changed_line_is_updated_and_an_absent_one_deactivated(tmp_path):
    rows = [df.mss_line(address=f"p{i}@medecin.mssante.fr", city="PAU") for i in range(20)]
    MssImporter().run(mss_file(tmp_path, rows))
    rows[0] = df.mss_line(address="p0@medecin.mssante.fr", city="NANTES", postcode="44000")
    run = MssImporter().run(mss_file(tmp_path, rows[:-1]))
    assert (run.added, run.updated, run.unchanged, run.deactivated) == (0, 1, 18, 1)
    assert DirectoryEntry.objects.get(address="p0@medecin.mssante.fr").city_norm == "nantes"
    assert not DirectoryEntry.objects.get(address="p19@medecin.mssante.fr").active
    # Back in the next file: active again.
    run = MssImporter().run(mss_file(tmp_path, rows))
    assert (run.updated, run.deactivated) == (1, 0)
    assert DirectoryEntry.objects.get(address="p19@medecin.mssante.fr").active


def test_a_truncated_file_does_not_deactivate_the_directory(tmp_path):
    rows = [df.mss_line(address=f"p{i}@medecin.mssante.fr") for i in range(20)]
    MssImporter().run(mss_file(tmp_path, rows))
    run = MssImporter().run(mss_file(tmp_path, rows[:10]))
    assert run.status == ImportRun.Status.REFUSED
    assert "--force" in run.message
    assert DirectoryEntry.objects.filter(active=True).count() == 20
    forced = MssImporter(force=True).run(mss_file(tmp_path, rows[:10]))
    assert (forced.status, forced.deactivated) == (ImportRun.Status.SUCCEEDED, 10)


def test_an_empty_file_is_refused_by_the_guard(tmp_path):
    MssImporter().run(mss_file(tmp_path, [df.mss_line() for _ in range(3)]))
    with pytest.raises(CommandError, match="refusé"):
        call_command("import_annuaire_mss", str(mss_file(tmp_path, [])), stdout=io.StringIO())
    assert DirectoryEntry.objects.filter(active=True).count() == 3


def test_a_partial_import_deactivates_nothing(tmp_path):
    MssImporter().run(mss_file(tmp_path, [df.mss_line() for _ in range(3)]))
    run = MssImporter(full=False).run(mss_file(tmp_path, [df.mss_line()]))
    assert (run.added, run.deactivated) == (1, 0)


def test_a_wrong_file_is_refused_at_once_with_both_headers(tmp_path):
    path = df.write(tmp_path / "ps.txt", PS_HEADER, [])
    with pytest.raises(FormatError) as exc:
        MssImporter().run(path)
    assert "Attendu : Type de BAL|Adresse BAL" in str(exc.value)
    assert "Trouvé  : Type d'identifiant PP" in str(exc.value)
    assert not ImportRun.objects.exists()


def test_the_command_prints_the_summary(tmp_path, capsys):
    call_command("import_annuaire_mss", str(mss_file(tmp_path, real_looking_rows())))
    out = capsys.readouterr().out
    assert "lues 11, ajoutées 6, modifiées 0, inchangées 0, désactivées 0, rejetées 5" in out
    assert "ligne 9 : 4 colonnes au lieu de 31" in out


def test_national_lines_never_overwrite_our_own_mailboxes(tmp_path):
    df.entry(address="moi@medecin.mssante.fr", source="local", last_name="LOCAL")
    MssImporter().run(mss_file(tmp_path, [df.mss_line(address="moi@medecin.mssante.fr")]))
    entry = DirectoryEntry.objects.get(address="moi@medecin.mssante.fr")
    assert (entry.source, entry.last_name) == ("local", "LOCAL")


# --- PS_LibreAcces ----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_it_imports_ps_libreacces_one_practitioner_per_national_id(tmp_path, encoding):
    rows: list = [
        df.ps_line(national_id="810000000001", last_name="LÉGER", city="Lyon"),
        df.ps_line(national_id="810000000001", last_name="LÉGER", city="Villeurbanne"),
        df.ps_line(national_id="810000000002", last_name="MARTIN"),
        df.ps_line(national_id="0750000001", profession=("60", "Infirmier")),
        "8|1|trop court",
        df.ps_line(national_id=""),
    ]
    path = df.write(tmp_path / "ps.txt", PS_HEADER, rows, encoding=encoding, trailing_pipe=True)
    run = PsImporter().run(path)
    assert (run.read, run.added, run.rejected) == (6, 3, 2)
    assert [r["line"] for r in run.rejected_lines] == [6, 7]
    leger = Practitioner.objects.get(national_id="810000000001")
    assert (leger.last_name, leger.city) == ("LÉGER", "Lyon")  # first activity kept
    assert Practitioner.objects.get(national_id="0750000001").id_type == "ADELI"
    again = PsImporter().run(path)
    assert (again.added, again.updated, again.unchanged, again.deactivated) == (0, 0, 3, 0)


def test_ps_import_fills_the_place_of_practice_of_directory_entries(tmp_path):
    MssImporter().run(
        mss_file(
            tmp_path,
            [
                df.mss_line(
                    address="a@medecin.mssante.fr", national_id="810000000009", city="", postcode=""
                ),
                df.mss_line(address="b@medecin.mssante.fr", national_id="810000000008", city="PAU"),
            ],
        )
    )
    path = df.write(
        tmp_path / "ps.txt",
        PS_HEADER,
        [
            df.ps_line(national_id="810000000009", city="Saint-Étienne", postcode="42000"),
            df.ps_line(national_id="810000000008", city="Lyon"),
        ],
    )
    PsImporter().run(path)
    a = DirectoryEntry.objects.get(address="a@medecin.mssante.fr")
    assert (a.city, a.city_norm, a.postcode) == ("Saint-Étienne", "saint etienne", "42000")
    assert DirectoryEntry.objects.get(address="b@medecin.mssante.fr").city == "PAU"


def test_a_stale_national_copy_of_our_unpublished_box_is_never_stored(tmp_path, settings):
    from directory import services

    # What the mailboxes app tells the directory of a box on the liste rouge (or closed).
    services.sync_mailbox(
        services.MailboxListing(address="discret@medecin.mssante.fr", kind="PER", published=False)
    )
    settings.PATIENT_DOMAIN = "patient.mssante.fr"
    rows = [
        df.mss_line(address="discret@medecin.mssante.fr"),
        df.mss_line(address="1234567890123@patient.mssante.fr"),
        df.mss_line(),
    ]
    run = MssImporter().run(mss_file(tmp_path, rows))
    assert (run.added, run.rejected) == (1, 2)
    assert all("liste rouge" in line["reason"] for line in run.rejected_lines)
    assert not DirectoryEntry.objects.filter(address="discret@medecin.mssante.fr").exists()
    assert not DirectoryEntry.objects.filter(address__endswith="@patient.mssante.fr").exists()


def test_the_scheduled_task_imports_the_configured_path(tmp_path, settings):
    from directory.tasks import import_annuaire

    settings.DIRECTORY_MSS_SOURCE = str(mss_file(tmp_path, [df.mss_line(), df.mss_line()]))
    run_id = import_annuaire("mss")
    assert run_id is not None
    run = ImportRun.objects.get(pk=run_id)
    assert (run.kind, run.added) == ("mss", 2)
    settings.DIRECTORY_PS_SOURCE = ""
    assert import_annuaire("ps") is None


@pytest.mark.parametrize("zipped", [False, True])
def test_an_overlong_line_is_rejected_without_being_read_whole(tmp_path, zipped):
    # A line of several megabytes (or a file without line breaks) is skipped in chunks.
    rows = [
        df.mss_line(address="avant@medecin.mssante.fr"),
        "PER|" + "x" * 3_000_000,
        df.mss_line(address="apres@medecin.mssante.fr"),
    ]
    path = df.write(
        tmp_path / ("mss.zip" if zipped else "mss.txt"), MSS_HEADER, rows, zipped=zipped
    )
    run = call_import(path)
    assert (run.read, run.added, run.rejected) == (3, 2, 1)
    assert run.rejected_lines[0]["line"] == 3
    assert "trop longue" in run.rejected_lines[0]["reason"]


def call_import(path: Path) -> ImportRun:
    call_command("import_annuaire_mss", str(path), stdout=io.StringIO())
    return ImportRun.objects.latest("pk")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the index rebuild is PostgreSQL's fast path"
)
def test_a_first_bulk_import_works_under_the_applications_own_role(tmp_path, monkeypatch):
    # The application's role (docs/deployment.md) does not own the tables and may not
    # drop their indexes: a first big import keeps the index instead of failing.
    from directory.importers import postgres

    monkeypatch.setattr(postgres, "BULK_REBUILD_ROWS", 0)
    path = mss_file(tmp_path, real_looking_rows())
    assert MssImporter().run(path).status == ImportRun.Status.SUCCEEDED
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [TRIGRAM_INDEX])
        assert cursor.fetchone() == (1,)
