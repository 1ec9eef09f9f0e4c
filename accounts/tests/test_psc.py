"""Sign-in with Pro Santé Connect, through the real local OpenID provider (scripts/oidc).

The browser's part is played by the test client (our site) and a ``requests`` session (the
provider's pages): every redirection is followed as a browser would, nothing is mocked.
The same flows in Chromium: tests/browser/test_psc_browser.py.
"""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from django.test import Client

from accounts import psc
from accounts.models import AccountSession, ProSanteConnectDevice, User
from audit.models import AuditEvent
from tests import factories as f
from tests import psc_provider

pytestmark = pytest.mark.django_db
HOST = "localhost:8000"  # a loopback host: the provider accepts it whatever the port
START = "/connexion/psc/"
CALLBACK = "/connexion/psc/retour/"


@pytest.fixture
def provider(settings: Any) -> Iterator[str]:
    url = psc_provider.require_provider()
    psc_provider.enable(settings, issuer_url=url)
    yield url


def at_provider(
    auth_url: str, national_id: str, means: str = "cps"
) -> tuple[str, requests.Session]:
    """Sign in on the provider's page from its authorization URL; the callback URL it sends back."""
    browser = requests.Session()
    response = browser.get(auth_url, allow_redirects=False)
    for _hop in range(5):
        location = response.headers.get("location", "")
        if location.startswith(f"http://{HOST}"):
            return location, browser  # already signed in at the provider (single sign-on)
        if response.status_code == 200 and 'name="login"' in response.text:
            response = browser.post(
                response.url,
                data={"login": national_id, "means": means},
                allow_redirects=False,
            )
            continue
        assert location, response.text[:500]
        response = browser.get(urljoin(response.url, location), allow_redirects=False)
    location = response.headers["location"]
    assert location.startswith(f"http://{HOST}{CALLBACK}"), location
    return location, browser


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def sign_in(
    client: Client, national_id: str, means: str = "cps", *, next_url: str = ""
) -> tuple[Any, requests.Session]:
    start = START + (f"?{urlencode({'next': next_url})}" if next_url else "")
    response = client.get(start, HTTP_HOST=HOST)
    assert response.status_code == 302, response.content[:300]
    callback, browser = at_provider(response["Location"], national_id, means)
    return client.get(local(callback), HTTP_HOST=HOST), browser


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


# --- Success ------------------------------------------------------------------------------


def test_a_professional_signs_in_with_a_cps_card_and_lands_in_the_webmail(provider, claire):
    client = Client()
    response, _browser = sign_in(client, claire.user.professional.national_id, "cps")
    assert response.status_code == 302 and response["Location"] == "/messagerie/"
    assert client.get("/messagerie/", HTTP_HOST=HOST).status_code == 200
    assert client.session[psc.SESSION_KEY]["level"] == "cps"
    assert client.session[psc.SESSION_KEY]["acr"] == "eidas1"
    (event,) = events("login.succeeded")
    assert event.actor_id == claire.user.pk
    assert event.data["method"] == "psc" and event.data["level"] == "cps"
    device = ProSanteConnectDevice.objects.get(user=claire.user)
    assert device.last_level == "cps"


def test_the_pkce_challenge_state_and_nonce_go_to_the_provider(provider, settings):
    response = Client().get(START, HTTP_HOST=HOST)
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert query["scope"] == ["openid scope_all"] and query["acr_values"] == ["eidas1"]
    assert query["redirect_uri"] == [f"http://{HOST}{CALLBACK}"]
    assert "timeout" not in query and "default_timeout" not in query


def test_an_ecps_sign_in_counts_as_both_factors_by_default(provider, claire):
    client = Client()
    response, _browser = sign_in(client, claire.user.professional.national_id, "ecps")
    assert response["Location"] == "/messagerie/"
    assert client.session[psc.SESSION_KEY]["level"] == "ecps"


def test_it_goes_on_to_the_page_asked_before_signing_in(provider, claire):
    client = Client()
    response, _browser = sign_in(
        client, claire.user.professional.national_id, next_url="/messagerie/?dossier=1"
    )
    assert response["Location"] == "/messagerie/?dossier=1"


def test_it_never_goes_on_to_another_site_after_signing_in(provider, claire):
    client = Client()
    response, _browser = sign_in(
        client, claire.user.professional.national_id, next_url="https://evil.example/"
    )
    assert response["Location"] == "/messagerie/"


# --- Level not strong enough alone: the one-time code as well -----------------------------


def test_a_level_not_listed_as_strong_asks_the_one_time_code_too(provider, settings, claire):
    settings.PSC_STRONG_LEVELS = ["cps"]
    client = Client()
    response, _browser = sign_in(client, claire.user.professional.national_id, "ecps")
    assert response["Location"] == "/connexion/code/"
    assert client.get("/messagerie/", HTTP_HOST=HOST).status_code == 302  # not in yet
    (asked,) = events("login.psc_code_asked")
    assert asked.data["level"] == "ecps"
    response = client.post("/connexion/code/", {"code": f.code_for(claire.user)}, HTTP_HOST=HOST)
    assert response["Location"] == "/messagerie/"
    assert client.get("/messagerie/", HTTP_HOST=HOST).status_code == 200
    assert client.session[psc.SESSION_KEY]["level"] == "ecps"


def test_an_unknown_means_is_never_strong_enough_alone(provider, claire):
    client = Client()
    response, _browser = sign_in(client, claire.user.professional.national_id, "faible")
    assert response["Location"] == "/connexion/code/"
    assert events("login.psc_code_asked")[0].data["level"] == psc.LEVEL_UNKNOWN


def test_a_professional_without_a_second_factor_is_sent_to_enrol_one(provider, settings):
    settings.PSC_STRONG_LEVELS = []
    newcomer = f.professional(enrol=False)
    client = Client()
    response, _browser = sign_in(client, newcomer.professional.national_id, "cps")
    assert response["Location"] == "/connexion/enrolement/"
    assert "_auth_user_id" not in client.session


def test_a_wrong_code_after_psc_still_keeps_the_door_shut(provider, settings, claire):
    settings.PSC_STRONG_LEVELS = []
    client = Client()
    sign_in(client, claire.user.professional.national_id, "cps")
    response = client.post("/connexion/code/", {"code": "000000"}, HTTP_HOST=HOST)
    assert "Code incorrect" in response.content.decode()
    assert client.get("/messagerie/", HTTP_HOST=HOST).status_code == 302


# --- Who: the national id only -----------------------------------------------------------


def test_an_unknown_national_id_gets_a_clear_page_and_no_account(provider, claire):
    before = User.objects.count()
    client = Client()
    response, _browser = sign_in(client, "899700000000", "cps")
    page = response.content.decode()
    assert response.status_code == 403
    assert "Aucun compte pour cet identifiant national" in page
    assert "899700000000" in page and "Aucun compte n'a été créé" in page
    assert User.objects.count() == before
    assert "_auth_user_id" not in client.session
    assert events("login.psc_unknown")[0].data["identifier"] == "899700000000"


def test_the_rpps_number_alone_is_not_the_national_id(provider, claire):
    # PSC returns "8" + RPPS: the bare RPPS (what the login form accepts) matches nothing.
    response, _browser = sign_in(Client(), claire.user.professional.id_number, "cps")
    assert response.status_code == 403


def test_a_suspended_professional_is_refused_with_the_reason(provider, claire):
    User.objects.filter(pk=claire.user.pk).update(
        status=User.Status.SUSPENDED, status_reason="Départ du cabinet"
    )
    client = Client()
    response, _browser = sign_in(client, claire.user.professional.national_id)
    assert response.status_code == 403
    assert "Votre compte est suspendu" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_account_switched_off_in_the_admin_is_refused(provider, claire):
    User.objects.filter(pk=claire.user.pk).update(is_active=False)
    client = Client()
    response, _browser = sign_in(client, claire.user.professional.national_id)
    assert response.status_code == 403 and "Ce compte est désactivé" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_patient_cannot_sign_in_with_psc_even_with_a_matching_number(provider):
    patient = f.patient()
    response, _browser = sign_in(Client(), patient.patient.ins[:12], "cps")
    assert response.status_code == 403


# --- Refusals: state, code, provider ------------------------------------------------------


def test_a_callback_with_a_wrong_state_is_refused(provider, claire):
    client = Client()
    response = client.get(START, HTTP_HOST=HOST)
    callback, _browser = at_provider(response["Location"], claire.user.professional.national_id)
    query = parse_qs(urlsplit(callback).query)
    query["state"] = ["forged-state"]
    response = client.get(CALLBACK + "?" + urlencode(query, doseq=True), HTTP_HOST=HOST)
    assert response.status_code == 400
    assert "ne correspond à aucune connexion en cours" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert events("login.psc_failed")[0].data["reason"] == "state"


def test_an_id_token_for_another_nonce_is_refused(provider, claire):
    # The provider signs the nonce of the request it got; the sign-in this browser started
    # expects another (as when a token is injected from another sign-in): refused.
    client = Client()
    response = client.get(START, HTTP_HOST=HOST)
    callback, _browser = at_provider(response["Location"], claire.user.professional.national_id)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    session = client.session
    session[f"_state_psc_{state}"]["data"]["nonce"] = "another-nonce"
    session.save()
    response = client.get(local(callback), HTTP_HOST=HOST)
    assert response.status_code == 400
    assert "n&#x27;a pas pu être vérifiée" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert events("login.psc_failed")[0].data["reason"] == "token"


def test_a_callback_played_twice_is_refused_the_second_time(provider, claire):
    client = Client()
    response = client.get(START, HTTP_HOST=HOST)
    callback, _browser = at_provider(response["Location"], claire.user.professional.national_id)
    assert client.get(local(callback), HTTP_HOST=HOST).status_code == 302
    client.logout()
    again = client.get(local(callback), HTTP_HOST=HOST)
    assert again.status_code == 400 and "_auth_user_id" not in client.session


def test_a_code_taken_to_another_browser_is_refused_by_the_provider(provider, claire):
    victim, thief = Client(), Client()
    response = victim.get(START, HTTP_HOST=HOST)
    stolen, _browser = at_provider(response["Location"], claire.user.professional.national_id)
    code = parse_qs(urlsplit(stolen).query)["code"][0]
    # The thief starts their own sign-in (their own state, their own PKCE verifier) and
    # hands in the victim's code: the provider refuses it (verifier, and a code is used once).
    response = thief.get(START, HTTP_HOST=HOST)
    own, _browser = at_provider(response["Location"], "899700000001")
    query = parse_qs(urlsplit(own).query)
    query["code"] = [code]
    response = thief.get(CALLBACK + "?" + urlencode(query, doseq=True), HTTP_HOST=HOST)
    assert response.status_code == 400
    assert "a expiré ou a déjà servi" in response.content.decode()
    assert "_auth_user_id" not in thief.session
    assert events("login.psc_failed")[0].data["reason"] == "code"


def test_an_expired_code_is_refused(settings, claire):
    url = psc_provider.require_provider()
    psc_provider.enable(settings, issuer_url=url, client_id=psc_provider.SHORT_CODE_CLIENT_ID)
    client = Client()
    response = client.get(START, HTTP_HOST=HOST)
    callback, _browser = at_provider(response["Location"], claire.user.professional.national_id)
    time.sleep(2.1)  # this client's codes live one second
    response = client.get(local(callback), HTTP_HOST=HOST)
    assert response.status_code == 400
    assert "a expiré ou a déjà servi" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_sign_in_cancelled_at_the_provider_says_so(provider):
    client = Client()
    client.get(START, HTTP_HOST=HOST)
    response = client.get(
        CALLBACK + "?error=access_denied&error_description=x&state=s", HTTP_HOST=HOST
    )
    assert response.status_code == 400
    assert "a été annulée ou refusée" in response.content.decode()


def test_a_provider_down_gets_a_clear_message_and_the_password_still_works(settings, claire):
    psc_provider.enable(settings, issuer_url=f"http://127.0.0.1:{psc_provider.free_port()}")
    client = Client()
    response = client.get(START, HTTP_HOST=HOST)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Pro Santé Connect ne répond pas pour le moment" in page
    assert 'id="id_password"' in page  # the other way in is on the same page
    client.post(
        "/connexion/", {"identifier": claire.user.username, "password": f.PASSWORD}, HTTP_HOST=HOST
    )
    response = client.post("/connexion/code/", {"code": f.code_for(claire.user)}, HTTP_HOST=HOST)
    assert response["Location"] == "/messagerie/"
    assert events("login.psc_failed")[0].data["reason"] == "provider"


def test_a_provider_that_never_answers_is_given_up_after_the_timeout(settings):
    # It accepts the connection and says nothing: the web worker must not wait forever.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        port = silent.getsockname()[1]
        psc_provider.enable(settings, issuer_url=f"http://127.0.0.1:{port}", PSC_TIMEOUT_SECONDS=1)
        began = time.monotonic()
        response = Client().get(START, HTTP_HOST=HOST)
        assert time.monotonic() - began < 5
    assert "Pro Santé Connect ne répond pas pour le moment" in response.content.decode()


def test_a_forged_callback_costs_no_call_to_the_provider(settings):
    # No sign-in started here: refused on the state alone (the issuer does not even exist).
    psc_provider.enable(settings, issuer_url=f"http://127.0.0.1:{psc_provider.free_port()}")
    response = Client().get(CALLBACK + "?code=x&state=" + "A" * 5000, HTTP_HOST=HOST)
    assert response.status_code == 400
    response = Client().get(CALLBACK + "?state=only", HTTP_HOST=HOST)
    assert response.status_code == 400


# --- Logout ends the PSC session too ------------------------------------------------------


def follow_without_login(browser: requests.Session, auth_url: str) -> str:
    """Where the provider sends a browser it already knows: straight back with a code, or ""."""
    response = browser.get(auth_url, allow_redirects=False)
    for _hop in range(5):
        location = response.headers.get("location", "")
        if location.startswith(f"http://{HOST}"):
            return location
        if not location:
            return ""
        response = browser.get(urljoin(response.url, location), allow_redirects=False)
    return ""


def test_logout_ends_the_psc_session_too(provider, claire):
    client = Client()
    response, browser = sign_in(client, claire.user.professional.national_id)
    # Signed in at the provider: another sign-in comes straight back (single sign-on).
    again = Client().get(START, HTTP_HOST=HOST)
    assert follow_without_login(browser, again["Location"]).startswith(f"http://{HOST}{CALLBACK}")
    response = client.post("/deconnexion/", HTTP_HOST=HOST)
    end = response["Location"]
    assert end.startswith(f"{provider}/session/end?")
    query = parse_qs(urlsplit(end).query)
    assert query["post_logout_redirect_uri"] == [f"http://{HOST}/connexion/"]
    assert query["id_token_hint"][0].count(".") == 2
    assert "_auth_user_id" not in client.session
    # The browser goes on to the provider, whose page confirms at once (a script a browser
    # runs: here its form is sent by hand), ends its session and sends the browser back.
    page = browser.get(end).text
    action = re.search(r'action="([^"]+)"', page)
    xsrf = re.search(r'name="xsrf" value="([^"]+)"', page)
    assert action and xsrf, page[:500]
    response = browser.post(
        urljoin(end, html.unescape(action.group(1))),
        data={"xsrf": xsrf.group(1), "logout": "yes"},
        allow_redirects=False,
    )
    assert response.headers["location"] == f"http://{HOST}/connexion/"
    # The provider asks who it is again: its session is over.
    start = Client().get(START, HTTP_HOST=HOST)
    assert follow_without_login(browser, start["Location"]) == ""


def test_a_password_logout_goes_back_to_the_login_page(provider, claire):
    client = Client()
    client.force_login(claire.user)
    response = client.post("/deconnexion/", HTTP_HOST=HOST)
    assert response["Location"] == "/connexion/"


# --- On or off ----------------------------------------------------------------------------


def test_psc_off_shows_no_button_and_its_addresses_do_not_exist(settings):
    settings.PSC_ENABLED = False
    client = Client()
    assert "Pro Santé Connect" not in client.get("/connexion/").content.decode()
    assert client.get(START).status_code == 404
    assert client.get(CALLBACK + "?code=x&state=y").status_code == 404


def test_psc_on_shows_its_button_before_the_password_form(settings):
    psc_provider.enable(settings, issuer_url=psc_provider.issuer())
    page = Client().get("/connexion/?next=/messagerie/").content.decode()
    assert "Se connecter avec" in page and "Pro Santé Connect" in page
    assert 'href="/connexion/psc/?next=/messagerie/"' in page
    assert page.index('id="psc-login"') < page.index('id="id_password"')


def test_the_start_refuses_other_methods_than_get(settings):
    psc_provider.enable(settings, issuer_url=psc_provider.issuer())
    assert Client().post(START).status_code == 405
    assert Client().post(CALLBACK).status_code == 405


def test_the_level_is_read_from_the_amr_values(settings):
    assert psc.level_of(("sc", "pin", "mfa")) == psc.LEVEL_CARD
    assert psc.level_of(("swk", "pin")) == psc.LEVEL_ECPS
    assert psc.level_of(("pwd",)) == psc.LEVEL_UNKNOWN
    assert psc.level_of(()) == psc.LEVEL_UNKNOWN
    assert not psc.is_strong(psc.LEVEL_UNKNOWN)
    settings.PSC_STRONG_LEVELS = ["cps"]
    assert psc.is_strong("cps") and not psc.is_strong("ecps")


# --- Settings -----------------------------------------------------------------------------


def _start_with(tmp_path: Any, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mssante.settings",
        "MSSANTE_IGNORE_DOTENV": "true",
        "MSSANTE_VAR_DIR": str(tmp_path),
        "PSC_CLIENT_SECRET_FILE": "",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=environment,
        capture_output=True,
        text=True,
        cwd=psc_provider.ROOT,
        check=False,
    )


def test_psc_on_without_its_client_fails_at_start_naming_the_variables(tmp_path):
    result = _start_with(tmp_path, PSC_ENABLED="true", PSC_CLIENT_ID="", PSC_CLIENT_SECRET="")
    assert result.returncode != 0
    assert "PSC_CLIENT_ID" in result.stderr and "PSC_CLIENT_SECRET_FILE" in result.stderr


def test_psc_refuses_a_plain_http_issuer_off_loopback(tmp_path):
    result = _start_with(
        tmp_path,
        PSC_ENABLED="true",
        PSC_CLIENT_ID="x",
        PSC_CLIENT_SECRET="y",
        PSC_ISSUER="http://auth.example.fr/realm",
    )
    assert result.returncode != 0 and "PSC_ISSUER" in result.stderr


# --------------------------------------------------------------------------- with the account page


def test_staff_signed_in_with_a_cps_card_reach_the_admin_and_e_cps_does_not(
    provider, settings, claire
):
    """The admin asks a phishing-resistant factor: a CPS card through PSC is one (setting
    STAFF_PSC_STRONG_LEVELS), an e-CPS is not, and the sessions list names PSC."""
    settings.STAFF_REQUIRE_PHISHING_RESISTANT = True
    claire.user.is_staff = True
    claire.user.save(update_fields=["is_staff"])
    card = Client()
    sign_in(card, claire.user.professional.national_id, "cps")
    assert card.get("/admin/", HTTP_HOST=HOST).status_code == 200
    page = html.unescape(card.get("/compte/", HTTP_HOST=HOST).content.decode())
    assert "Pro Santé Connect" in page and "avec la carte CPS." in page
    (session,) = AccountSession.objects.filter(user=claire.user, ended_at__isnull=True)
    assert session.method == AccountSession.Method.PSC

    app = Client()
    sign_in(app, claire.user.professional.national_id, "ecps")
    assert app.session[psc.SESSION_KEY]["level"] == "ecps"
    refused = app.get("/admin/", HTTP_HOST=HOST)
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")
