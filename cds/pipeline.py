"""One service call, stage by stage: parse -> gather -> facts -> rules -> cards.

Each arrow is a plain function call; the API and the CLI both answer through `Pipeline.call`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from cds import cards, facts, fhir, fhir_client, hooks, rulebook
from cds.engine import Engine, Evaluation
from cds.errors import BadRequest, NotFound, PreconditionFailed, RuleFileError
from cds.services import BY_ID, prefetch_templates


@dataclass(frozen=True)
class Outcome:
    """Everything one call produced, for the response and for `cds explain`-style tooling."""

    request: hooks.HookRequest
    facts: facts.Facts
    evaluation: Evaluation
    cards: list[dict[str, Any]]


class Pipeline:
    """The loaded rules, compiled engine and settings of one app; thread-safe."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.rulebook = rulebook.load(config["RULES_DIR"])
        self.regimen_name = config["REGIMEN"]
        if self.regimen_name not in self.rulebook.regimens:
            raise RuleFileError("regimens.yaml", f"CDS_REGIMEN {self.regimen_name!r} is not one "
                                f"of {sorted(self.rulebook.regimens)}")
        self.engine = Engine(self.rulebook)
        self.prefetch = prefetch_templates(self.rulebook)
        self.fixed_now = date.fromisoformat(config["NOW"]) if config.get("NOW") else None
        self.uuid_seed = config.get("CARD_UUID_SEED")
        self.fetch = fhir_client.FetchSettings(
            timeout=float(config["FHIR_TIMEOUT"]), deadline=float(config["FHIR_DEADLINE"]),
            max_pages=int(config["FHIR_MAX_PAGES"]),
            allowed=tuple(p.strip() for p in config["FHIR_SERVERS"].split(",") if p.strip()))

    def _gather(self, request: hooks.HookRequest) -> fhir.PatientRecord:
        """Prefetch, completed from the FHIR server where keys are missing, then validated.

        Data the FHIR server sent that fails validation becomes a gap on the card (the client
        did not send it, so it is not a 400); when no data at all can be seen, 412.
        """
        fetched, gaps = fhir_client.fetch_missing(request, self.prefetch, self.fetch)
        gap_lines = [str(g) for g in gaps]
        if len(gaps) == len(self.prefetch):
            raise PreconditionFailed(
                "no patient data could be obtained: " + "; ".join(gap_lines), field="prefetch")
        while True:
            merged = replace(request, prefetch={**request.prefetch, **fetched})
            try:
                return fhir.gather(merged, self.rulebook, gap_lines)
            except BadRequest as exc:
                key = (exc.field or "").removeprefix("prefetch.").split(".")[0]
                if key not in fetched:
                    raise
                del fetched[key]
                gap_lines.append(f"{key}: the EHR's FHIR server sent data that is not valid "
                                 f"({exc.detail})")

    def discovery(self) -> dict[str, Any]:
        return {"services": [s.describe(self.prefetch) for s in BY_ID.values()]}

    def call(self, service_id: str, body: Any) -> Outcome:
        """Answer one service call; raises a CdsError for bad input."""
        service = BY_ID.get(service_id)
        if service is None:
            raise NotFound(f"no CDS service with id {service_id!r}", field="id")
        request = hooks.parse_request(body, service.hook)
        record = self._gather(request)
        now = self.fixed_now or date.today()
        clinical = facts.build(record, self.rulebook, now, self.regimen_name)
        evaluation = self.engine.evaluate(clinical.engine_facts())
        ctx = cards.CardContext(self.regimen_name, self.rulebook.regimens[self.regimen_name],
                                request.hook_instance, self.uuid_seed, request.hook,
                                request.patient_id)
        return Outcome(request, clinical, evaluation, cards.render(evaluation, clinical, ctx))
