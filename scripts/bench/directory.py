"""Benchmark of the directory at national scale (issue 5), on PostgreSQL.

Generates a synthetic Extraction Correspondance MSSanté of 535,000 lines in
the real format, imports it with the management command in a child process
(wall time and peak RSS of that process), re-imports it unchanged, then times
1,000 varied autocomplete queries.

    DATABASE_URL=postgres://mssante_owner:owner@127.0.0.1:55432/bench_directory \\
        .venv/bin/python scripts/bench/directory.py [--lines 535000] [--keep FILE]

The database must exist and be dedicated to the benchmark: its directory
tables are emptied first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

LAST_NAMES = (
    (
        "MARTIN BERNARD DUBOIS THOMAS ROBERT RICHARD PETIT DURAND LEROY MOREAU SIMON LAURENT "
        "LEFEBVRE MICHEL GARCIA DAVID BERTRAND ROUX VINCENT FOURNIER MOREL GIRARD ANDRE LEFEVRE "
        "MERCIER DUPONT LAMBERT BONNET FRANCOIS MARTINEZ LEGRAND GARNIER FAURE ROUSSEAU BLANC "
        "GUERIN MULLER HENRY ROUSSEL NICOLAS PERRIN MORIN MATHIEU CLEMENT GAUTHIER DUMONT LOPEZ "
        "FONTAINE CHEVALIER ROBIN MASSON SANCHEZ GERARD NGUYEN BOYER DENIS LEMAIRE DUVAL JOLY "
        "GAUTIER ROGER ROCHE ROY NOEL MEYER LUCAS MEUNIER JEAN PEREZ MARCHAND DUFOUR BLANCHARD "
        "MARIE BARBIER BRUN DUMAS BRUNET SCHMITT LEROUX COLIN FERNANDEZ PIERRE RENARD ARNAUD "
        "ROLLAND CARON AUBERT GIRAUD LECLERC VIDAL BOURGEOIS RENAUD LEMOINE PICARD GAILLARD "
        "PHILIPPE LECLERCQ LACROIX FABRE DUPUIS OLIVIER RODRIGUEZ DA_SILVA HUBERT LOUIS CHARLES "
        "GUILLOT RIVIERE LE_GALL GUILLAUME ADAM REY MOULIN GONZALEZ BERGER LECOMTE MENARD FLEURY "
        "DESCHAMPS CARPENTIER JULIEN BENOIT PARIS MAILLARD MARCHAL AUBRY VASSEUR LE_ROUX RENAULT "
        "JACQUET COLLET PREVOST POIRIER CHARPENTIER ROYER HUET BAILLY LE_GOFF HÉBERT GUÉRIN LÉGER"
    )
    .replace("_", " ")
    .split()
)
FIRST_NAMES = [
    "Jean",
    "Marie",
    "Pierre",
    "Anne",
    "Michel",
    "Nathalie",
    "Philippe",
    "Isabelle",
    "Alain",
    "Sylvie",
    "Nicolas",
    "Catherine",
    "Christophe",
    "Françoise",
    "Patrick",
    "Martine",
    "Laurent",
    "Christine",
    "Frédéric",
    "Valérie",
    "Stéphane",
    "Sandrine",
    "Hélène",
    "Céline",
    "Éric",
    "Jérôme",
    "Sébastien",
    "Aurélie",
    "Chloé",
    "Léa",
    "Zoé",
    "Maëlle",
    "Noémie",
    "Gaël",
    "Loïc",
    "Inès",
]
CITIES = [
    ("75015", "PARIS", "75"),
    ("69003", "LYON", "69"),
    ("13005", "MARSEILLE", "13"),
    ("33000", "BORDEAUX", "33"),
    ("31000", "TOULOUSE", "31"),
    ("44000", "NANTES", "44"),
    ("59000", "LILLE", "59"),
    ("67000", "STRASBOURG", "67"),
    ("42000", "SAINT-ÉTIENNE", "42"),
    ("06000", "NICE", "06"),
    ("35000", "RENNES", "35"),
    ("29200", "BREST", "29"),
    ("64000", "PAU", "64"),
    ("21000", "DIJON", "21"),
]
PROFESSIONS = [
    ("10", "Médecin", "SM54", "Médecine générale (SM)"),
    ("10", "Médecin", "SM04", "Cardiologie et maladies vasculaires (SM)"),
    ("21", "Pharmacien", "", ""),
    ("60", "Infirmier", "", ""),
    ("70", "Masseur-Kinésithérapeute", "", ""),
    ("50", "Sage-Femme", "", ""),
    ("40", "Chirurgien-Dentiste", "", ""),
]
SERVICES = ["Cardiologie", "Urgences", "Pédiatrie", "Secrétariat", "Laboratoire", "Radiologie"]


def generate(path: Path, count: int, seed: int = 5) -> None:
    from mssante.lib.annuaire import MSS_HEADER

    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("|".join(MSS_HEADER) + "|\r\n")
        for n in range(count):
            postcode, city, dept = rng.choice(CITIES)
            if rng.random() < 0.88:
                last = rng.choice(LAST_NAMES)
                first = rng.choice(FIRST_NAMES)
                code, label, sf_code, sf_label = rng.choice(PROFESSIONS)
                rpps = f"1{n:010d}"
                local = f"{first}.{last}".lower().replace(" ", "-")
                local = local.encode("ascii", "ignore").decode() or "pro"
                fields = [
                    "PER",
                    f"{local}.{n}@{rng.choice(('medecin', 'pharmacien', 'infirmier'))}.mssante.fr",
                    "8",
                    rpps,
                    f"8{rpps}",
                    "1",
                    f"1{330000000 + n % 90000}",
                    "",
                    "DR" if code == "10" else "M",
                    last,
                    first,
                    "C",
                    "Civil",
                    code,
                    label,
                    sf_code,
                    sf_label,
                    "O",
                    f"CABINET {last}",
                    "",
                    "",
                    "",
                    str(n % 90 + 1),
                    "",
                    "R",
                    "DE LA RÉPUBLIQUE",
                    "",
                    f"{postcode} {city}",
                    postcode,
                    dept,
                    "FRANCE",
                ]
            else:
                service = rng.choice(SERVICES)
                fields = [
                    "ORG",
                    f"{service.lower().replace('é', 'e')}.{n}@ch-{city.lower().replace('é', 'e')}.mssante.fr",
                    "",
                    "",
                    "",
                    "1",
                    f"1{330000000 + n % 90000}",
                    service,
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "O",
                    f"CENTRE HOSPITALIER DE {city}",
                    "",
                    "",
                    "",
                    "1",
                    "",
                    "R",
                    "DE L'HÔPITAL",
                    "",
                    f"{postcode} {city}",
                    postcode,
                    dept,
                    "FRANCE",
                ]
            out.write("|".join(fields) + "|\r\n")


def run_import(path: Path, env: dict[str, str]) -> tuple[float, float, str]:
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "manage.py", "import_annuaire_mss", str(path), "--force"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    # wait4 gives this child's own rusage: ru_maxrss is its peak RSS (KiB on Linux).
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        sys.exit(f"import failed ({child.returncode}):\n{output}")
    return elapsed, usage.ru_maxrss / 1024, output.strip()


def queries(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(count):
        kind = rng.random()
        name = rng.choice(LAST_NAMES).lower()
        first = rng.choice(FIRST_NAMES)
        if kind < 0.45:
            out.append(name[: rng.randint(2, len(name))])
        elif kind < 0.6:
            out.append(
                name.capitalize().replace("e", "é", 1)[: rng.randint(min(3, len(name)), len(name))]
            )
        elif kind < 0.75:
            out.append(f"{first.lower()}.{name[:3]}")
        elif kind < 0.85:
            out.append(f"{first} {name[: rng.randint(2, len(name))]}")
        elif kind < 0.95:
            out.append(rng.choice(["card", "urg", "pédia", "secr", "labo"]))
        else:
            out.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=535_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--keep", help="write the synthetic file here and keep it")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit(
            "DATABASE_URL must point to a dedicated PostgreSQL database (e.g. bench_directory)."
        )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mssante.settings"}

    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mssante.settings")
    import django

    django.setup()
    from django.db import connection

    from directory import selectors
    from directory.models import DirectoryEntry, ImportRun

    DirectoryEntry.objects.all().delete()
    ImportRun.objects.all().delete()
    connection.close()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "Extraction_Correspondance_MSSante.txt"
        started = time.perf_counter()
        generate(path, args.lines)
        size = path.stat().st_size / 1e6
        print(
            f"generated {args.lines:,} lines ({size:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )

        first, peak, summary = run_import(path, env)
        print(f"import:    {first:6.1f} s  peak RSS {peak:.0f} MB\n{summary}")
        second, peak2, summary2 = run_import(path, env)
        print(f"re-import: {second:6.1f} s  peak RSS {peak2:.0f} MB\n{summary2}")

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE directory_directoryentry")
    timings: list[float] = []
    empty = 0
    for q in queries(args.queries):
        started = time.perf_counter()
        body = json.dumps(selectors.autocomplete(q))
        timings.append((time.perf_counter() - started) * 1000)
        empty += body == "[]"
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(
        f"autocomplete over {len(timings)} queries: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"max {timings[-1]:.1f} ms ({empty} without suggestion)"
    )


if __name__ == "__main__":
    main()
