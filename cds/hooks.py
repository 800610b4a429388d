"""Parse and validate a CDS Hooks service request into a `HookRequest`.

Tolerates what real clients send (extra fields, an omitted prefetch key, a draftOrders Bundle with
no `type`) but rejects what cannot be read honestly, naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cds.errors import BadRequest

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
ORDER_HOOKS = {"order-select", "order-sign"}


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    patient_id: str
    context: Mapping[str, Any]
    prefetch: Mapping[str, Any]
    draft_orders: tuple[Mapping[str, Any], ...] = ()
    selections: tuple[str, ...] = ()
    fhir_server: str | None = None
    fhir_authorization: Mapping[str, Any] | None = field(default=None, repr=False)


def parse_request(body: Any, expected_hook: str) -> HookRequest:
    """Validate the decoded JSON body of a call to a service listening on `expected_hook`."""
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, not {_kind(body)}", field="body")
    hook = _text(body, "hook")
    if hook != expected_hook:
        raise BadRequest(f"this service answers {expected_hook!r}, not {hook!r}", field="hook")
    hook_instance = _text(body, "hookInstance")
    context = body.get("context")
    if not isinstance(context, dict):
        raise BadRequest("'context' must be a JSON object", field="context")
    patient_id = _text(context, "patientId", "context.patientId")
    if not _FHIR_ID.match(patient_id):
        raise BadRequest("'context.patientId' is not a valid FHIR id", field="context.patientId")
    draft_orders: tuple[Mapping[str, Any], ...] = ()
    selections: tuple[str, ...] = ()
    if hook in ORDER_HOOKS:
        draft_orders = _draft_orders(context.get("draftOrders"))
        selections = _selections(context.get("selections"))
    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        patient_id=patient_id,
        context=context,
        prefetch=_prefetch(body.get("prefetch")),
        draft_orders=draft_orders,
        selections=selections,
        fhir_server=_fhir_server(body),
        fhir_authorization=_optional_object(body, "fhirAuthorization"),
    )


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null"}.get(type(value), "a scalar")


def _text(obj: Mapping[str, Any], key: str, name: str | None = None) -> str:
    value = obj.get(key)
    name = name or key
    if value is None:
        raise BadRequest(f"'{name}' is required", field=name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{name}' must be a non-empty string", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800"
        raise BadRequest(f"'{name}' is not valid Unicode text", field=name) from exc
    return value.strip()


def _optional_text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string", field=key)
    return value or None


def _fhir_server(body: Mapping[str, Any]) -> str | None:
    """The FHIR base URL: absolute http(s), else 400 (it is fetched from when prefetch is short)."""
    server = _optional_text(body, "fhirServer")
    if server is None:
        return None
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise BadRequest(f"'fhirServer' is not a valid URL: {exc}", field="fhirServer") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadRequest("'fhirServer' must be an absolute http(s) URL", field="fhirServer")
    return server


def _optional_object(obj: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise BadRequest(f"'{key}' must be a JSON object", field=key)
    return value


def _prefetch(prefetch: Any) -> dict[str, Any]:
    if prefetch is None:
        return {}
    if not isinstance(prefetch, dict):
        raise BadRequest("'prefetch' must be a JSON object of key -> resource", field="prefetch")
    for key, value in prefetch.items():
        if value is None:
            continue
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise BadRequest(
                f"prefetch '{key}' must be a FHIR resource, a Bundle or null",
                field=f"prefetch.{key}",
            )
        if value["resourceType"] == "Bundle":
            _bundle_entries(value, f"prefetch.{key}")
    return prefetch


def _bundle_entries(bundle: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise BadRequest(f"'{name}.entry' must be an array", field=f"{name}.entry")
    resources = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise BadRequest(
                f"'{name}.entry[{i}].resource' must be a FHIR resource",
                field=f"{name}.entry[{i}].resource",
            )
        resources.append(resource)
    return resources


def bundle_resources(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The resources of an already-checked Bundle (or the resource itself when not a Bundle)."""
    if bundle.get("resourceType") != "Bundle":
        return [bundle]
    return [e["resource"] for e in bundle.get("entry", [])]


def _draft_orders(draft: Any) -> tuple[Mapping[str, Any], ...]:
    if draft is None:
        raise BadRequest("'context.draftOrders' is required for order hooks",
                         field="context.draftOrders")
    if not isinstance(draft, dict) or draft.get("resourceType") != "Bundle":
        raise BadRequest("'context.draftOrders' must be a FHIR Bundle", field="context.draftOrders")
    return tuple(_bundle_entries(draft, "context.draftOrders"))


def _selections(selections: Any) -> tuple[str, ...]:
    if selections is None:
        return ()
    if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
        raise BadRequest("'context.selections' must be an array of references",
                         field="context.selections")
    return tuple(selections)
