"""Fetch prefetch data the CDS client did not send, from its FHIR server.

Only keys that are absent or `null` are fetched, with the same queries as the prefetch templates
(context filled in), the client's bearer token, bounded paging, a timeout per HTTP request and an
overall deadline. Every failure becomes a plain-language `Gap` for the card; nothing raises.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

from cds.hooks import HookRequest


@dataclass(frozen=True)
class FetchSettings:
    timeout: float = 2.0  #: seconds per HTTP request
    deadline: float = 3.0  #: seconds for all fetching of one service call
    max_pages: int = 5  #: Bundle pages followed per query
    #: base-URL prefixes the service may send a client's token to (default: any https server)
    allowed: tuple[str, ...] = ("https://",)


@dataclass(frozen=True)
class Gap:
    """A prefetch key whose data the service could not see, and why."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class _FetchError(Exception):
    pass


def fill_template(template: str, request: HookRequest) -> str:
    """Replace the context tokens this service's templates use."""
    query = template.replace("{{context.patientId}}", request.patient_id)
    user = request.context.get("userId")
    if isinstance(user, str):
        query = query.replace("{{context.userId}}", user)
    return query


def fetch_missing(
    request: HookRequest, templates: Mapping[str, str], settings: FetchSettings
) -> tuple[dict[str, Any], tuple[Gap, ...]]:
    """Fetch the absent or null prefetch keys; return the fetched resources and the gaps."""
    missing = [k for k in templates if request.prefetch.get(k) is None]
    if not missing:
        return {}, ()
    token = (request.fhir_authorization or {}).get("access_token")
    if not request.fhir_server:
        return {}, tuple(Gap(k, "not sent by the EHR, and no fhirServer to ask") for k in missing)
    if not isinstance(token, str) or not token:
        return {}, tuple(Gap(k, "not sent by the EHR, and no access token to ask its FHIR "
                                "server") for k in missing)
    if not request.fhir_server.startswith(settings.allowed):
        # never send a token, or make a request, to a server the operator did not allow
        return {}, tuple(Gap(k, "not sent by the EHR, and its fhirServer is not one this "
                                "service may contact (CDS_FHIR_SERVERS)") for k in missing)
    base = request.fhir_server.rstrip("/") + "/"
    stop_at = time.monotonic() + settings.deadline
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}",
                            "Accept": "application/fhir+json, application/json"})
    fetched: dict[str, Any] = {}
    gaps: list[Gap] = []
    with ThreadPoolExecutor(max_workers=min(len(missing), 8)) as pool:
        futures = {
            pool.submit(_fetch_query, session, base, fill_template(templates[k], request),
                        settings, stop_at): k
            for k in missing
        }
        done, not_done = wait(futures, timeout=max(stop_at - time.monotonic(), 0))
        for future in not_done:
            future.cancel()
            gaps.append(Gap(futures[future], "could not be read from the EHR (time limit)"))
        for future in done:
            key = futures[future]
            try:
                fetched[key] = future.result()
            except _FetchError as exc:
                gaps.append(Gap(key, f"could not be read from the EHR ({exc})"))
    session.close()
    order = list(templates)
    return fetched, tuple(sorted(gaps, key=lambda g: order.index(g.key)))


def _fetch_query(session: requests.Session, base: str, query: str, settings: FetchSettings,
                 stop_at: float) -> dict[str, Any]:
    """GET one query (following Bundle `next` links on the same server) as one resource/Bundle."""
    url = urljoin(base, query)
    first = _get_json(session, url, settings, stop_at)
    if first.get("resourceType") != "Bundle":
        return first
    entries = _entries(first)
    page, pages = first, 1
    while (next_url := _next_link(page)) and pages < settings.max_pages:
        if not next_url.startswith(base):
            raise _FetchError("a paging link leaves the FHIR server")
        page = _get_json(session, next_url, settings, stop_at)
        if page.get("resourceType") != "Bundle":
            raise _FetchError("a page is not a FHIR Bundle")
        entries += _entries(page)
        pages += 1
    return {"resourceType": "Bundle", "type": first.get("type", "searchset"), "entry": entries}


def _entries(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("resource"), dict)
        and isinstance(e["resource"].get("resourceType"), str) for e in entries
    ):
        raise _FetchError("a Bundle entry is not a FHIR resource")
    return entries


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _get_json(session: requests.Session, url: str, settings: FetchSettings,
              stop_at: float) -> dict[str, Any]:
    remaining = stop_at - time.monotonic()
    if remaining <= 0:
        raise _FetchError("time limit")
    try:
        response = session.get(url, timeout=min(settings.timeout, remaining))
    except requests.Timeout as exc:
        raise _FetchError("timed out") from exc
    except requests.RequestException as exc:
        raise _FetchError(f"connection failed: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise _FetchError(f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise _FetchError("the answer is not FHIR JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise _FetchError("the answer is not a FHIR resource")
    return body
