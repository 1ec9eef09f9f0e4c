"""The admin site: staff only, and only after the second factor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR, ChangeList, ChangeListSearchForm
from django.contrib.auth.views import redirect_to_login
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite

from accounts.access import is_verified, staff_factor_missing
from audit import seals
from charter.models import AbuseReport
from directory.models import ImportRun
from mailboxes import staff as mail_staff
from mailboxes.models import Delivery
from mssante import saved_search
from mssante.errors import Refused
from trust import listeblanche


class PortalAdminSite(OTPAdminSite):
    site_header = _("Administration de l'opérateur")
    site_title = _("Administration")
    index_title = _("Tableau de bord de l'équipe")
    index_template = "admin/portal_index.html"
    # Django's side menu of every model takes a fifth of a 1280 px screen beside the lists
    # and their filters, and cut the tables; the breadcrumbs and the index lead there too.
    enable_nav_sidebar = False

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        # The operator's name, not a generic title, in every page's header and title.
        context["site_header"] = settings.OPERATOR_SHORT_NAME or settings.OPERATOR_NAME
        context["site_title"] = settings.OPERATOR_SHORT_NAME or settings.OPERATOR_NAME
        return context

    def index(self, request: HttpRequest, extra_context: Any = None) -> TemplateResponse:
        # The dashboard comes first: what waits, what is stuck, what staff must look at.
        return super().index(request, {"dashboard": dashboard(), **(extra_context or {})})

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(
            user.is_active
            and user.is_staff
            and is_verified(user)
            and getattr(user, "status", "active") == "active"
            and not staff_factor_missing(request)
        )

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # One login for everyone: the portal's own, with its lockout and code step.
        target = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            target = reverse("admin:index", current_app=self.name)
        if self.has_permission(request):
            return HttpResponseRedirect(target)
        if is_verified(request.user) and request.user.is_staff and staff_factor_missing(request):
            # Staff past password and code, without a phishing-resistant factor in this
            # session: a page that says how to get one (STAFF_REQUIRE_PHISHING_RESISTANT).
            return HttpResponseRedirect(
                reverse("accounts:strong_factor") + "?" + urlencode({"next": target})
            )
        if is_verified(request.user):
            # Logged in, second factor done, yet not staff: sending them to the login
            # page would send them straight back here, for ever. Say no, and why.
            raise Refused(
                _(
                    "L'administration est réservée à l'équipe de l'opérateur. Votre compte "
                    "n'y a pas accès : retournez à votre messagerie."
                )
            )
        return redirect_to_login(target)

    # ------------------------------------------------------------------ searches
    # Staff search by a patient's name or INS: in a GET query string the terms would land
    # in every access log (see mssante.saved_search). The search box is POSTed here, the
    # terms kept in the session, and the list reopened with only their opaque id (_s).

    def get_urls(self) -> list[Any]:
        return [
            path("recherche/", self.admin_view(self.saved_search_view), name="saved_search"),
            *super().get_urls(),
        ]

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        # Every list of the admin searches this way, whoever wrote its ModelAdmin.
        admin_class = admin_class or ModelAdmin
        if not issubclass(admin_class, SavedSearchAdmin):
            admin_class = type(
                admin_class.__name__,
                (SavedSearchAdmin, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)

    def saved_search_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        target = urlsplit(str(request.POST.get("next", "")))
        index = reverse("admin:index", current_app=self.name)
        if target.scheme or target.netloc or not target.path.startswith(index):
            return HttpResponseBadRequest()
        params = [
            (key, value)
            for key, value in parse_qsl(target.query, keep_blank_values=True)
            if key not in (SEARCH_VAR, SAVED_SEARCH_VAR, PAGE_VAR)
        ]
        terms = str(request.POST.get(SEARCH_VAR, "")).strip()[:SEARCH_MAX]
        if terms:
            search_id = saved_search.remember(request, _admin_kind(target.path), {"q": terms})
            params.append((SAVED_SEARCH_VAR, search_id))
        query = f"?{urlencode(params)}" if params else ""
        return saved_search.see_results(target.path + query)


SAVED_SEARCH_VAR = "_s"
# Longer terms are cut: no name or INS is anywhere near.
SEARCH_MAX = 200


def _admin_kind(path: str) -> str:
    return f"admin:{path}"


class SavedSearchChangeList(ChangeList):
    """A changelist whose search terms come from the session (``_s``), never the URL."""

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        terms = ""
        search_id = request.GET.get(SAVED_SEARCH_VAR)
        if search_id:
            saved = saved_search.recall(request, _admin_kind(request.path), search_id)
            if saved is None:
                messages.info(
                    request,
                    _("Cette recherche a expiré (ou vient d'une autre session) : relancez-la."),
                )
            else:
                terms = str(saved.get("q", ""))
        if terms:
            # The form Django builds from request.GET gets the saved terms instead.
            data = request.GET.copy()
            data[SEARCH_VAR] = terms
            self.search_form_class = _FixedData(data)  # type: ignore[assignment]
        super().__init__(request, *args, **kwargs)
        # Where the search box leads back to: this list with its filters (the box's template
        # is an inclusion tag, without the request).
        self.search_next = request.path + self.get_query_string(
            remove=[SEARCH_VAR, SAVED_SEARCH_VAR, PAGE_VAR]
        )

    def get_filters_params(self, params: Any = None) -> dict[str, Any]:
        lookup = super().get_filters_params(params)
        lookup.pop(SAVED_SEARCH_VAR, None)
        return lookup


class _FixedData:
    """Builds the changelist's search form from given data rather than the request's."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __call__(self, _request_data: Any) -> ChangeListSearchForm:
        return ChangeListSearchForm(self.data)


class SavedSearchAdmin(ModelAdmin):
    """Mixed into every ModelAdmin of the portal's site (PortalAdminSite.register)."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return SavedSearchChangeList


# ---------------------------------------------------------------------------- dashboard


@dataclass(frozen=True)
class Figure:
    """One figure of the dashboard and the admin list it comes from."""

    label: str
    value: int
    url: str
    alert: bool = False


@dataclass(frozen=True)
class Dashboard:
    figures: list[Figure]
    deferred_domains: list[tuple[str, int, str]]
    liste_blanche: Any
    liste_blanche_ok: Any
    directory: list[Any]
    seal: seals.SealStatus


def _admin(name: str, query: dict[str, str] | None = None) -> str:
    url = reverse(f"admin:{name}")
    return f"{url}?{urlencode(query)}" if query else url


def dashboard() -> Dashboard:
    """The figures of the staff's dashboard: counts on indexed columns, a dozen queries."""
    queued = mail_staff.count(Delivery.Status.QUEUED)
    deferred = mail_staff.count(Delivery.Status.DEFERRED)
    held = mail_staff.held_in_quarantine()
    reports = AbuseReport.objects.filter(status=AbuseReport.Status.OPEN).count()
    figures = [
        Figure(
            gettext("Messages en attente d'analyse"),
            mail_staff.pending_scans(),
            _admin("mailboxes_message_changelist", {"scan_status__exact": "pending"}),
        ),
        Figure(
            gettext("Distributions en file d'attente"),
            queued,
            _admin("mailboxes_delivery_changelist", {"status__exact": "queued"}),
        ),
        Figure(
            gettext("Distributions différées"),
            deferred,
            _admin("mailboxes_delivery_changelist", {"status__exact": "deferred"}),
            alert=deferred > 0,
        ),
        Figure(
            gettext("Messages en quarantaine"),
            held,
            _admin("mailboxes_quarantine_changelist", {"status__exact": "held"}),
            alert=held > 0,
        ),
        Figure(
            gettext("Signalements à traiter"),
            reports,
            _admin("charter_abusereport_changelist", {"status__exact": "open"}),
            alert=reports > 0,
        ),
    ]
    domains = [
        (
            row.domain,
            row.count,
            _admin(
                "mailboxes_delivery_changelist",
                {"status__exact": "deferred", "domaine": row.domain},
            ),
        )
        for row in mail_staff.deferred_by_domain()
    ]
    directory = [
        run
        for kind in ImportRun.Kind
        if (run := ImportRun.objects.filter(kind=kind).order_by("-started_at", "-id").first())
    ]
    return Dashboard(
        figures=figures,
        deferred_domains=domains,
        liste_blanche=listeblanche.last_import(),
        liste_blanche_ok=listeblanche.last_successful_import(),
        directory=directory,
        seal=seals.status(),
    )
