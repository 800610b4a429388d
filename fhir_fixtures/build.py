"""Build the hook-request fixtures in this folder from short patient descriptions.

Run `python fhir_fixtures/build.py` after editing a case; then refresh and *review* the goldens
(`NAME.expected.json`) with `python fhir_fixtures/build.py --goldens`. Each case states what it
exercises; the goldens are the service's answers, checked by a person before committing.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).parent
LOINC, ICD, SCT = "http://loinc.org", "http://hl7.org/fhir/sid/icd-10-cm", "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

UNITS = {"pg/mL": "pg/mL", "ng/L": "ng/L", "pmol/L": "pmol/L", "g/dL": "g/dL", "g/L": "g/L",
         "fL": "fL", "umol/L": "umol/L", "nmol/L": "nmol/L"}


def patient(pid: str, birth: str = "1960-03-15", gender: str = "female") -> dict:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": gender}


def obs(pid: str, oid: str, code: str, value: float, unit: str, when: str,
        comparator: str | None = None, high: float | None = None,
        low: float | None = None) -> dict:
    q = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if comparator:
        q["comparator"] = comparator
    o = {"resourceType": "Observation", "id": oid, "status": "final",
         "code": {"coding": [{"system": LOINC, "code": code}]},
         "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
         "valueQuantity": q}
    bounds = {k: {"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
              for k, v in (("low", low), ("high", high)) if v is not None}
    if bounds:
        o["referenceRange"] = [bounds]
    return o


def condition(pid: str, cid: str, system: str, code: str, display: str,
              status: str = "active") -> dict:
    return {"resourceType": "Condition", "id": cid,
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": status}]},
            "code": {"coding": [{"system": system, "code": code, "display": display}]},
            "subject": {"reference": f"Patient/{pid}"}}


def med(kind: str, pid: str, mid: str, code: str, display: str, status: str = "active",
        when: str | None = None) -> dict:
    r = {"resourceType": kind, "id": mid, "status": status,
         "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code,
                                                   "display": display}]},
         "subject": {"reference": f"Patient/{pid}"}}
    if kind == "MedicationRequest":
        r["intent"] = "order"
    if kind == "MedicationAdministration":
        r["effectiveDateTime"] = when
    return r


def injection(pid: str, n: int, when: str) -> dict:
    return med("MedicationAdministration", pid, f"{pid}-dose-{n}", "309594",
               "vitamin B12 1 MG/ML Injectable Solution", status="completed", when=when)


def bundle(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


def draft_b12(pid: str, dosage: dict | None = None, code: str = "309594",
              display: str = "vitamin B12 1 MG/ML Injectable Solution") -> dict:
    return {"resourceType": "MedicationRequest", "id": f"{pid}-draft", "status": "draft",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code,
                                                      "display": display}]},
            "subject": {"reference": f"Patient/{pid}"},
            "dosageInstruction": [dosage or {"text": "1000 mcg IM monthly"}]}


def structured(dose: float, unit: str, frequency: int, period: float, period_unit: str,
               count: int | None = None, text: str | None = None) -> dict:
    repeat = {"frequency": frequency, "period": period, "periodUnit": period_unit}
    if count:
        repeat["count"] = count
    dosage = {"timing": {"repeat": repeat}, "route": {"text": "Intramuscular"},
              "doseAndRate": [{"doseQuantity": {"value": dose, "unit": unit,
                                                "system": "http://unitsofmeasure.org",
                                                "code": {"mcg": "ug"}.get(unit, unit)}}]}
    if text:
        dosage["text"] = text
    return dosage


def request(hook: str, pid: str, labs=(), conditions=(), meds=(), admins=(), procedures=(),
            pat: dict | None = None, omit: tuple[str, ...] = (), draft: dict | None = None) -> dict:
    context = {"userId": "Practitioner/ph-1", "patientId": pid}
    if hook in {"order-select", "order-sign"}:
        context["draftOrders"] = bundle([draft or draft_b12(pid)])
        if hook == "order-select":
            context["selections"] = [f"MedicationRequest/{pid}-draft"]
    prefetch = {
        "patient": pat or patient(pid),
        "labs": bundle(list(labs)),
        "conditions": bundle(list(conditions)),
        "medicationStatements": bundle([m for m in meds if m["resourceType"] == "MedicationStatement"]),
        "medicationRequests": bundle([m for m in meds if m["resourceType"] == "MedicationRequest"]),
        "medicationAdministrations": bundle(list(admins)),
        "procedures": bundle(list(procedures)),
    }
    for key in omit:
        prefetch.pop(key)
    return {"hook": hook, "hookInstance": f"00000000-0000-4000-8000-{zlib.crc32(pid.encode()):012d}",
            "context": context, "prefetch": prefetch}


def cases() -> dict[str, dict]:
    """name -> hook request. The name says the hook and what the case exercises."""
    pv, osel, osign = "patient-view", "order-select", "order-sign"
    b12 = lambda pid, v, unit="pg/mL", when="2026-05-10", **kw: obs(  # noqa: E731
        pid, f"{pid}-b12", "2132-9" if unit != "pmol/L" else "14685-2", v, unit, when, **kw)
    pa = lambda pid: condition(pid, f"{pid}-pa", ICD, "D51.0",  # noqa: E731
                               "Vitamin B12 deficiency anemia due to intrinsic factor deficiency")
    doses = lambda pid, dates: [injection(pid, i, d) for i, d in enumerate(dates, 1)]  # noqa: E731
    loading = [f"2026-04-{d:02d}" for d in range(1, 8)] + ["2026-04-14", "2026-04-21",
                                                           "2026-04-28", "2026-05-05"]
    return {
        "pv-pernicious-anemia-deficient": request(pv, "p01", labs=[b12("p01", 150)],
                                                  conditions=[pa("p01")]),
        "pv-pmol-deficient-cause-unknown": request(pv, "p02", labs=[b12("p02", 90, "pmol/L")]),
        "pv-indeterminate-no-mma": request(pv, "p03", labs=[b12("p03", 250, "ng/L")]),
        "pv-indeterminate-mma-raised": request(pv, "p04", labs=[
            b12("p04", 250, "ng/L"), obs("p04", "p04-mma", "13964-2", 0.45, "umol/L", "2026-05-12")]),
        "pv-indeterminate-mma-nmol-normal": request(pv, "p05", labs=[
            b12("p05", 250, "ng/L"),
            obs("p05", "p05-mma", "13964-2", 300, "nmol/L", "2026-05-12", high=400)]),
        "pv-normal-not-indicated": request(pv, "p06", labs=[b12("p06", 520)]),
        "pv-stale-b12": request(pv, "p07", labs=[b12("p07", 120, when="2025-01-10")]),
        "pv-no-labs": request(pv, "p08"),
        "pv-child-out-of-scope": request(pv, "p09", labs=[b12("p09", 100)],
                                         pat=patient("p09", birth="2014-02-01")),
        "pv-maintenance-loading-complete": request(pv, "p10", labs=[b12("p10", 140, when="2026-03-20")],
                                                   conditions=[pa("p10")],
                                                   admins=doses("p10", loading)),
        "pv-loading-under-way": request(pv, "p11", labs=[b12("p11", 140, when="2026-05-20")],
                                        admins=doses("p11", ["2026-05-28", "2026-05-29", "2026-05-30"])),
        "pv-neuro-untreated-critical": request(pv, "p12", labs=[b12("p12", 100)], conditions=[
            pa("p12"), condition("p12", "p12-neuro", ICD, "G62.9", "Polyneuropathy, unspecified")]),
        "os-metformin-deficient": request(osel, "p13", labs=[b12("p13", 150)], meds=[
            med("MedicationStatement", "p13", "p13-met", "861007", "metformin hydrochloride 500 MG Oral Tablet")]),
        "osign-gastrectomy-censored": request(osign, "p14", labs=[b12("p14", 150, comparator="<")],
                                              procedures=[{"resourceType": "Procedure", "id": "p14-gx",
                                                           "status": "completed",
                                                           "code": {"coding": [{"system": SCT, "code": "26452005", "display": "Total gastrectomy"}]},
                                                           "subject": {"reference": "Patient/p14"},
                                                           "performedDateTime": "2019-09-01"}]),
        "pv-unknown-unit-ignored": request(pv, "p15", labs=[b12("p15", 0.2, "mg/dL")]),
        "pv-pregnancy-out-of-scope": request(pv, "p16", labs=[b12("p16", 150)], conditions=[
            condition("p16", "p16-preg", SCT, "77386006", "Pregnancy")]),
        "pv-dietary-deficient": request(pv, "p17", labs=[b12("p17", 160)], conditions=[
            condition("p17", "p17-diet", ICD, "D51.3", "Other dietary vitamin B12 deficiency anemia")]),
        "pv-established-maintenance-statement": request(pv, "p18", conditions=[pa("p18")], meds=[
            med("MedicationStatement", "p18", "p18-stmt", "309594", "vitamin B12 1 MG/ML Injectable Solution")]),
        "pv-missing-prefetch-keys": request(pv, "p19", labs=[b12("p19", 150)],
                                           omit=("conditions", "procedures")),
        "pv-anaemia-macrocytosis-ppi": request(pv, "p20", labs=[
            b12("p20", 140), obs("p20", "p20-hb", "718-7", 10.5, "g/dL", "2026-05-10"),
            obs("p20", "p20-mcv", "787-2", 108, "fL", "2026-05-10")],
            meds=[med("MedicationRequest", "p20", "p20-ppi", "7646", "omeprazole")],
            pat=patient("p20", gender="male")),
        "pv-active-b12-low-only": request(pv, "p22", labs=[
            obs("p22", "p22-hc", "72160-5", 20, "pmol/L", "2026-05-15")]),
        "pv-indeterminate-active-b12-indeterminate": request(pv, "p23", labs=[
            b12("p23", 300, "ng/L"), obs("p23", "p23-hc", "72160-5", 40, "pmol/L", "2026-05-15")]),
        "pv-indeterminate-active-b12-normal": request(pv, "p24", labs=[
            b12("p24", 300, "ng/L"), obs("p24", "p24-hc", "72160-5", 90, "pmol/L", "2026-05-15")]),
        "pv-indeterminate-mma-above-lab-range": request(pv, "p25", labs=[
            b12("p25", 200, "ng/L"),
            obs("p25", "p25-mma", "13964-2", 0.5, "umol/L", "2026-05-12", high=0.4)]),
        "pv-indeterminate-mma-normal-no-range": request(pv, "p26", labs=[
            b12("p26", 200, "ng/L"), obs("p26", "p26-mma", "13964-2", 0.2, "umol/L", "2026-05-12")]),
        "pv-anaemia-female-homocysteine-gastrectomy-status": request(pv, "p27", labs=[
            b12("p27", 110), obs("p27", "p27-hb", "718-7", 100, "g/L", "2026-05-10"),
            obs("p27", "p27-hcy", "13965-9", 22, "umol/L", "2026-05-10")],
            conditions=[condition("p27", "p27-gx", ICD, "Z90.3", "Acquired absence of stomach [part of]")]),
        "pv-bariatric-status-and-procedure": request(pv, "p28", labs=[b12("p28", 95, "pmol/L")],
            conditions=[condition("p28", "p28-bs", ICD, "Z98.84", "Bariatric surgery status")],
            procedures=[{"resourceType": "Procedure", "id": "p28-rygb", "status": "completed",
                         "code": {"coding": [{"system": SCT, "code": "430715008", "display": "Bariatric operative procedure"}]},
                         "subject": {"reference": "Patient/p28"}, "performedDateTime": "2018-02-01"}]),
        "pv-ileal-crohns-neuro-paraesthesia": request(pv, "p29", labs=[b12("p29", 130)], conditions=[
            condition("p29", "p29-cd", ICD, "K50.012", "Crohn's disease of small intestine with intestinal obstruction"),
            condition("p29", "p29-par", ICD, "R20.2", "Paresthesia of skin")]),
        "os-famotidine-nitrous-oxide": request(osel, "p30", labs=[b12("p30", 150)], meds=[
            med("MedicationRequest", "p30", "p30-fam", "4278", "famotidine"),
            med("MedicationStatement", "p30", "p30-n2o", "7486", "nitrous oxide")]),
        "pv-neuro-maintenance-loading-complete": request(pv, "p31", conditions=[
            pa("p31"), condition("p31", "p31-atx", ICD, "R27.0", "Ataxia, unspecified")],
            admins=doses("p31", loading)),
        "osign-pernicious-anemia-and-metformin": request(osign, "p32", labs=[b12("p32", 120)],
            conditions=[pa("p32")],
            meds=[med("MedicationStatement", "p32", "p32-met", "6809", "metformin")]),
        "pv-folate-and-b12-deficient": request(pv, "p33", labs=[
            b12("p33", 140), obs("p33", "p33-fol", "2284-8", 2.1, "ug/L", "2026-05-10", low=3.0)],
            conditions=[condition("p33", "p33-fd", ICD, "D52.0", "Dietary folate deficiency anemia")]),
        "pv-folate-low-b12-normal": request(pv, "p34", labs=[
            b12("p34", 480), obs("p34", "p34-fol", "2284-8", 2.1, "ug/L", "2026-05-10", low=3.0)]),
        "pv-conflict-normal-b12-raised-mma-macrocytosis": request(pv, "p35", labs=[
            b12("p35", 420), obs("p35", "p35-mma", "13964-2", 0.6, "umol/L", "2026-05-12", high=0.4),
            obs("p35", "p35-mcv", "787-2", 106, "fL", "2026-05-10")]),
        "pv-conflict-pa-without-deficiency": request(pv, "p36", labs=[b12("p36", 400)],
                                                     conditions=[pa("p36")]),
        "os-metformin-neuro-paraesthesia": request(osel, "p37", labs=[b12("p37", 150)],
            conditions=[condition("p37", "p37-par", ICD, "R20.2", "Paresthesia of skin")],
            meds=[med("MedicationStatement", "p37", "p37-met", "6809", "metformin")]),
        "pv-dietary-neuro-sacd": request(pv, "p38", labs=[b12("p38", 90)], conditions=[
            condition("p38", "p38-diet", ICD, "D51.3", "Other dietary vitamin B12 deficiency anemia"),
            condition("p38", "p38-sacd", ICD, "G32.0", "Subacute combined degeneration of spinal cord")]),
        "pv-neuro-loading-under-way-not-critical": request(pv, "p39", labs=[b12("p39", 110, when="2026-05-20")],
            conditions=[pa("p39"), condition("p39", "p39-neuro", ICD, "G62.9", "Polyneuropathy, unspecified")],
            admins=doses("p39", ["2026-05-27", "2026-05-28", "2026-05-29", "2026-05-30", "2026-05-31"])),
        "pv-macrocytosis-normal-b12-no-mma": request(pv, "p40", labs=[
            b12("p40", 410), obs("p40", "p40-mcv", "787-2", 104, "fL", "2026-05-10")]),
        "osign-oral-b12-administration-not-counted": request(osign, "p41", labs=[b12("p41", 150)],
            admins=[med("MedicationAdministration", "p41", "p41-oral", "309593", "vitamin B12 1 MG Oral Tablet",
                        status="completed", when="2026-05-30")]),
        "pv-text-only-cyanocobalamin-injection-dose": request(pv, "p42", labs=[b12("p42", 150)],
            admins=[{"resourceType": "MedicationAdministration", "id": "p42-dose-1", "status": "completed",
                     "medicationCodeableConcept": {"text": "Cyanocobalamin 1000 mcg/mL injection"},
                     "subject": {"reference": "Patient/p42"}, "effectiveDateTime": "2026-05-31"}]),
        "pv-maintenance-improving": request(pv, "p43", labs=[
            b12("p43", 120, when="2025-12-20"),
            obs("p43", "p43-hb1", "718-7", 96, "g/L", "2025-12-20"),
            obs("p43", "p43-mcv1", "787-2", 109, "fL", "2025-12-20"),
            obs("p43", "p43-hb2", "718-7", 131, "g/L", "2026-03-01"),
            obs("p43", "p43-mcv2", "787-2", 93, "fL", "2026-03-01")],
            conditions=[pa("p43")],
            admins=doses("p43", [f"2026-01-{d:02d}" for d in range(1, 8)]
                         + ["2026-01-14", "2026-01-21", "2026-01-28", "2026-02-04", "2026-03-04",
                            "2026-04-04", "2026-05-04"])),
        "pv-maintenance-worsening": request(pv, "p44", labs=[
            obs("p44", "p44-hb1", "718-7", 13.4, "g/dL", "2025-09-01"),
            obs("p44", "p44-mcv1", "787-2", 94, "fL", "2025-09-01"),
            obs("p44", "p44-hb2", "718-7", 11.6, "g/dL", "2026-05-20"),
            obs("p44", "p44-mcv2", "787-2", 103, "fL", "2026-05-20")],
            conditions=[pa("p44")],
            meds=[med("MedicationStatement", "p44", "p44-stmt", "309594", "vitamin B12 1 MG/ML Injectable Solution")],
            pat=patient("p44", gender="male")),
        "pv-maintenance-stable-hb-mmol": request(pv, "p45", labs=[
            obs("p45", "p45-hb1", "59260-0", 8.3, "mmol/L", "2025-10-01"),
            obs("p45", "p45-hb2", "59260-0", 8.5, "mmol/L", "2026-04-01"),
            obs("p45", "p45-mcv1", "787-2", 92, "fL", "2025-10-01"),
            obs("p45", "p45-mcv2", "787-2", 93, "fL", "2026-04-01")],
            conditions=[condition("p45", "p45-gx", ICD, "Z90.3", "Acquired absence of stomach [part of]")],
            meds=[med("MedicationStatement", "p45", "p45-stmt", "317106", "hydroxocobalamin 1 MG/ML Injectable Solution")]),
        "pv-severe-anaemia-potassium": request(pv, "p46", labs=[
            b12("p46", 70), obs("p46", "p46-hb", "718-7", 7.2, "g/dL", "2026-05-28"),
            obs("p46", "p46-mcv", "787-2", 118, "fL", "2026-05-28")], conditions=[pa("p46")]),
        "os-real-client-deviations": real_client_deviations(),
        "pv-coeliac-and-pancreatic-insufficiency": request(pv, "p48", labs=[b12("p48", 120)], conditions=[
            condition("p48", "p48-cd", ICD, "K90.0", "Celiac disease"),
            condition("p48", "p48-epi", ICD, "K86.81", "Exocrine pancreatic insufficiency")],
            meds=[med("MedicationRequest", "p48", "p48-ppi", "40790", "pantoprazole")]),
        "osign-maintenance-daily-order-structured": request(osign, "p49", conditions=[pa("p49")],
            meds=[med("MedicationStatement", "p49", "p49-stmt", "309594", "vitamin B12 1 MG/ML Injectable Solution")],
            draft=draft_b12("p49", structured(1000, "mcg", 1, 1, "d", count=7))),
        "os-dose-500-mcg-daily": request(osel, "p50", labs=[b12("p50", 150)],
            draft=draft_b12("p50", structured(500, "mcg", 1, 1, "d", count=7))),
        "osign-oral-tablet-pernicious-anemia": request(osign, "p51", labs=[b12("p51", 150)],
            conditions=[pa("p51")],
            draft=draft_b12("p51", {"text": "1 mg by mouth once daily"}, "309593", "vitamin B12 1 MG Oral Tablet")),
        "osign-duplicate-active-order": request(osign, "p52", labs=[b12("p52", 150)],
            meds=[med("MedicationRequest", "p52", "p52-active", "309594", "vitamin B12 1 MG/ML Injectable Solution")],
            draft=draft_b12("p52", structured(1000, "mcg", 1, 1, "d", count=7))),
        "os-matches-loading-structured": request(osel, "p53", labs=[b12("p53", 150)],
            draft=draft_b12("p53", structured(1, "mg", 1, 1, "d", count=7))),
        "os-one-ml-alternate-days-text": request(osel, "p54", labs=[b12("p54", 150)],
            draft=draft_b12("p54", {"text": "Inject 1 mL IM every other day"})),
        "osign-schedule-unreadable": request(osign, "p55", labs=[b12("p55", 150)],
            draft=draft_b12("p55", {"text": "use as directed"})),
        "osign-order-deficiency-unlikely": request(osign, "p56", labs=[b12("p56", 520)],
            draft=draft_b12("p56", structured(1000, "mcg", 1, 1, "mo"))),
        "osign-maintenance-every-3-months": request(osign, "p57", conditions=[pa("p57")],
            meds=[med("MedicationStatement", "p57", "p57-stmt", "309594", "vitamin B12 1 MG/ML Injectable Solution")],
            draft=draft_b12("p57", structured(1000, "mcg", 1, 3, "mo"))),
        "os-order-before-confirmation": request(osel, "p58",
            draft=draft_b12("p58", structured(1000, "mcg", 1, 1, "d", count=7))),
        "osign-neuro-loading-matches": request(osign, "p59", labs=[b12("p59", 100)], conditions=[
            pa("p59"), condition("p59", "p59-neuro", ICD, "G62.9", "Polyneuropathy, unspecified")],
            draft=draft_b12("p59", structured(1000, "mcg", 1, 1, "d", count=7))),
        "osign-maintenance-monthly-matches": request(osign, "p60", conditions=[pa("p60")],
            meds=[med("MedicationStatement", "p60", "p60-stmt", "309594", "vitamin B12 1 MG/ML Injectable Solution")],
            draft=draft_b12("p60", structured(1000, "mcg", 1, 1, "mo"))),
        "osign-neuro-maintenance-weekly-order": request(osign, "p61", conditions=[
            pa("p61"), condition("p61", "p61-atx", ICD, "R27.0", "Ataxia, unspecified")],
            admins=doses("p61", loading),
            draft=draft_b12("p61", structured(1000, "mcg", 1, 1, "wk"))),
        "osign-neuro-maintenance-monthly-matches": request(osign, "p63", conditions=[
            pa("p63"), condition("p63", "p63-par", ICD, "R20.2", "Paresthesia of skin")],
            meds=[med("MedicationStatement", "p63", "p63-stmt", "309594", "vitamin B12 1 MG/ML Injectable Solution")],
            draft=draft_b12("p63", structured(1000, "mcg", 1, 1, "mo"))),
        "osign-neuro-maintenance-every-2-months": request(osign, "p65", conditions=[
            pa("p65"), condition("p65", "p65-neuro", ICD, "G62.9", "Polyneuropathy, unspecified")],
            admins=doses("p65", loading),
            draft=draft_b12("p65", {"text": "Inject 1 mL IM every 2 months"})),
        "pv-old-course-lapsed-restart-loading": request(pv, "p66", labs=[b12("p66", 130)],
            admins=doses("p66", ["2023-03-01", "2023-03-02", "2023-03-03"])),
        "pv-intrinsic-factor-antibody-positive": request(pv, "p67", labs=[b12("p67", 150), {
            "resourceType": "Observation", "id": "p67-ifab", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "31444-3"}]},
            "subject": {"reference": "Patient/p67"}, "effectiveDateTime": "2026-05-12",
            "valueCodeableConcept": {"text": "Positive"},
            "interpretation": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                "code": "POS"}]}]}]),
        "pv-intrinsic-factor-antibody-above-lab-range": request(pv, "p68", labs=[b12("p68", 150), {
            **obs("p68", "p68-ifab", "31443-5", 3.2, "AU/mL", "2026-05-12", high=1.1)}]),
        "pv-intrinsic-factor-antibody-negative": request(pv, "p69", labs=[b12("p69", 150), {
            "resourceType": "Observation", "id": "p69-ifab", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "31444-3"}]},
            "subject": {"reference": "Patient/p69"}, "effectiveDateTime": "2026-05-12",
            "valueCodeableConcept": {"text": "Negative"},
            "interpretation": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                "code": "NEG"}]}]}]),
        "pv-cognitive-change-observation-neuro": request(pv, "p70", labs=[b12("p70", 120), {
            "resourceType": "Observation", "id": "p70-mem", "status": "final",
            "code": {"coding": [{"system": ICD, "code": "R41.3", "display": "Other amnesia"}]},
            "subject": {"reference": "Patient/p70"}, "effectiveDateTime": "2026-05-02"}]),
        "os-loading-under-way-order-continues": request(osel, "p62", labs=[b12("p62", 140, when="2026-05-20")],
            admins=doses("p62", ["2026-05-28", "2026-05-29", "2026-05-30"]),
            draft=draft_b12("p62", structured(1000, "mcg", 1, 1, "mo"))),
        "pv-maintenance-new-neuro-symptoms": request(pv, "p64", conditions=[
            pa("p64"), {**condition("p64", "p64-par", ICD, "R20.2", "Paresthesia of skin"),
                        "onsetDateTime": "2026-05-01"}],
            admins=doses("p64", loading)),
        "osign-resolved-pa-not-counted": request(osign, "p21", labs=[b12("p21", 400)], conditions=[
            condition("p21", "p21-pa", ICD, "D51.0", "Pernicious anemia", status="resolved")]),
    }


def real_client_deviations() -> dict:
    """What real clients send (checklist, last section): tolerated, never an error."""
    body = request("order-select", "p47", labs=[obs("p47", "p47-b12", "2132-9", 150, "pg/mL", "2026-05-10")],
                   omit=("procedures",))
    lab = body["prefetch"]["labs"]["entry"][0]["resource"]
    lab["code"]["coding"] = lab["code"]["coding"][0]            # object where FHIR says array
    lab["category"] = {"coding": [{"code": "laboratory"}]}       # object where FHIR says array
    lab["vendorExtra"] = {"flag": True}                          # unknown element
    body["prefetch"]["conditions"] = {"resourceType": "Bundle", "type": "searchset"}  # no entry
    body["context"]["draftOrders"].pop("type")                   # Bundle without type
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft.pop("id")                                              # draft without id
    body["context"]["draftOrders"]["entry"].append({"resource": {  # medication not chosen yet
        "resourceType": "MedicationRequest", "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/p47"}}})
    body["context"]["selections"] = ["MedicationRequest/not-in-draft-orders"]
    body["extraTopLevel"] = "ignored"
    return body


def write_requests() -> None:
    for name, body in cases().items():
        (HERE / f"{name}.json").write_text(json.dumps(body, indent=2) + "\n")


def write_goldens() -> None:
    """Same as `cds replay fhir_fixtures --update`."""
    sys.path.insert(0, str(HERE.parent))
    from cds import replay

    for path in replay.find_requests([HERE]):
        replay.write_golden(replay.run(path))


if __name__ == "__main__":
    write_goldens() if "--goldens" in sys.argv else write_requests()
