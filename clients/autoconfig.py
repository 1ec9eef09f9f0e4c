"""Automatic configuration: a client given only an address finds our servers.

- Thunderbird (and most clients) fetch ``/.well-known/autoconfig/mail/config-v1.1.xml``
  or ``autoconfig.<domain>/mail/config-v1.1.xml`` with ``?emailaddress=``;
- Outlook POSTs an Autodiscover request (``/autodiscover/autodiscover.xml``) naming the
  address, and reads a "POX" answer.

Only for the professional domains we host (patients have no client access): any other
address gets 404, so nothing tells which boxes exist (the answer depends on the domain
only). The request body is bounded and parsed with defusedxml.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotFound,
    RawPostDataException,
)
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from mailboxes import addresses
from mailboxes.selectors import hosted_domains

MAX_REQUEST_BYTES = 16 * 1024
_XML = "application/xml; charset=utf-8"


def _served_domain(address: str) -> str | None:
    """The domain of ``address`` when we host it for professionals, else None."""
    try:
        normalised = addresses.normalise(address)
    except addresses.AddressError:
        return None
    domain = addresses.domain_of(normalised)
    served = hosted_domains()
    if domain not in served.active or domain in served.patient:
        return None
    return domain


def _thunderbird(domain: str) -> str:
    host = escape(settings.CLIENTS_PUBLIC_HOST)
    name = escape(settings.OPERATOR_NAME)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{escape(domain)}">
    <domain>{escape(domain)}</domain>
    <displayName>{name}</displayName>
    <displayShortName>{name}</displayShortName>
    <incomingServer type="imap">
      <hostname>{host}</hostname>
      <port>{settings.IMAP_PUBLIC_PORT}</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>{settings.SUBMISSION_PUBLIC_PORT}</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>{settings.SUBMISSION_TLS_PUBLIC_PORT}</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


@require_GET
def thunderbird_view(request: HttpRequest) -> HttpResponse:
    """The Thunderbird autoconfig file (config-v1.1) for the address asked about."""
    domain = _served_domain(str(request.GET.get("emailaddress", ""))[:300])
    if domain is None:
        return HttpResponseNotFound("", content_type=_XML)
    return HttpResponse(_thunderbird(domain), content_type=_XML)


_REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


def _outlook(address: str) -> str:
    host = escape(settings.CLIENTS_PUBLIC_HOST)
    login = escape(address)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="{_RESPONSE_NS}">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol>
        <Type>IMAP</Type>
        <Server>{host}</Server>
        <Port>{settings.IMAP_PUBLIC_PORT}</Port>
        <LoginName>{login}</LoginName>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <Encryption>TLS</Encryption>
        <AuthRequired>on</AuthRequired>
      </Protocol>
      <Protocol>
        <Type>SMTP</Type>
        <Server>{host}</Server>
        <Port>{settings.SUBMISSION_PUBLIC_PORT}</Port>
        <LoginName>{login}</LoginName>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <Encryption>TLS</Encryption>
        <AuthRequired>on</AuthRequired>
        <UsePOPAuth>off</UsePOPAuth>
        <SMTPLast>off</SMTPLast>
      </Protocol>
    </Account>
  </Response>
</Autodiscover>
"""


@csrf_exempt  # a mail client's request, no session, no cookie: nothing to forge
@require_http_methods(["POST"])
def autodiscover_view(request: HttpRequest) -> HttpResponse:
    """Microsoft Autodiscover (POX): the IMAP and SMTP settings for the address posted."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_REQUEST_BYTES:
        return HttpResponse(status=413)
    if request.content_type not in ("text/xml", "application/xml"):
        # A form (multipart) may have been read already: only XML is an Autodiscover request.
        return HttpResponseBadRequest("", content_type=_XML)
    try:
        root = ElementTree.fromstring(request.body)
    except (ElementTree.ParseError, DefusedXmlException, ValueError, RawPostDataException):
        return HttpResponseBadRequest("", content_type=_XML)
    found = root.find(f".//{{{_REQUEST_NS}}}EMailAddress")
    address = (found.text or "").strip() if found is not None else ""
    if _served_domain(address) is None:
        return HttpResponseNotFound("", content_type=_XML)
    return HttpResponse(_outlook(addresses.normalise(address)), content_type=_XML)
