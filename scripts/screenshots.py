"""Screenshots of the living demo for the README and docs/screenshots, in one command.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--port 8765] [--keep]

Builds a fresh embedded demo (SQLite and eager tasks in a temporary var directory, so the
developer's own var/ is left alone), seeds it with `seed_demo` (the living demo), serves it
with `runserver`, logs in through the login pages as the demo doctor and the demo patient
in Chromium (Playwright, /usr/bin/chromium) and takes each page at 1280 px (desktop) and
375 px (phone). A page that scrolls sideways at 375 px is reported and makes the run fail.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, ViewportSize, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=375, height=812)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def totp(secret_b32: str, at: float | None = None) -> str:
    """The current code of a TOTP secret (RFC 6238: SHA-1, 30 s, 6 digits)."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = struct.pack(">Q", int((time.time() if at is None else at) // 30))
    digest = hmac.new(key, counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/connexion/", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the demo server did not start")


def log_in(page: Page, base: str, account: dict[str, str]) -> None:
    page.goto(base + "/connexion/")
    page.locator("#id_identifier").fill(account["identifier"])
    page.locator("#id_password").fill(account["password"])
    page.get_by_role("button", name="Continuer").click()
    page.get_by_label("Code à usage unique").fill(totp(account["totp_secret"]))
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(lambda url: "/connexion/" not in url)


def shoot(page: Page, out: Path, name: str, problems: list[str]) -> None:
    """``name``-desktop.png and ``name``-phone.png of the page shown."""
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        wide = page.evaluate("document.documentElement.scrollWidth")
        if suffix == "phone" and wide > PHONE["width"]:
            problems.append(f"{name}: {wide} px wide at {PHONE['width']} px")
        page.screenshot(path=str(out / f"{name}-{suffix}.png"), full_page=True)
        print(f"  {out / f'{name}-{suffix}.png'}")
    page.set_viewport_size(DESKTOP)


def open_link(page: Page, text: str) -> None:
    page.get_by_role("link", name=text).first.click()
    page.wait_for_load_state()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="keep the temporary var directory")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    var = Path(tempfile.mkdtemp(prefix="mssante-shots-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env |= {"MSSANTE_VAR_DIR": str(var), "PYTHONUNBUFFERED": "1"}
    manage(env, "migrate", "--noinput", "-v0")
    accounts = {a["key"]: a for a in json.loads(manage(env, "seed_demo", "--json"))}
    server = serve(env, args.port)
    base = f"http://127.0.0.1:{args.port}"
    problems: list[str] = []
    # A code is accepted once: one login (one browser context) per account.
    home = lambda page: page.goto(base + "/")  # noqa: E731
    pages: dict[str, list[tuple[str, Callable[[Page], None]]]] = {
        "doctor": [
            ("demo-inbox", home),
            (
                "demo-read",
                lambda page: open_link(page, "Lettre de liaison de sortie — LEFEBVRE Jean"),
            ),
            ("demo-shared", lambda page: open_link(page, "Secrétariat de cardiologie")),
        ],
        "patient": [
            ("demo-patient", lambda page: open_link(page, "Vos résultats de bilan sanguin")),
        ],
    }
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            for who, shots in pages.items():
                context = browser.new_context(
                    viewport=DESKTOP, locale="fr-FR", timezone_id="Europe/Paris"
                )
                page = context.new_page()
                log_in(page, base, accounts[who])
                for name, go in shots:
                    page.goto(base + "/")
                    go(page)
                    shoot(page, out, name, problems)
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)
        else:
            print(f"demo kept in {var}")
    for problem in problems:
        print("TOO WIDE:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
