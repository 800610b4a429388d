"""Replay reports: JUnit XML for CI, and an HTML page with a lab timeline per patient.

The timeline (serum B12, Hb, MCV, with injection dates marked) is drawn by matplotlib as SVG.
"""

from __future__ import annotations

import html
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from cds.replay import Result, describe

TIMELINE_TESTS = (("serum-b12", "Serum B12 (ng/L)"), ("hemoglobin", "Hb (g/L)"),
                  ("mcv", "MCV (fL)"))


def write_junit(results: list[Result], errors: dict[str, str], path: Path) -> None:
    """One testcase per request: a failure lists the differences, an error the unreadable file."""
    suite = ET.Element("testsuite", name="cds-replay", tests=str(len(results) + len(errors)),
                       failures=str(sum(1 for r in results if not r.matched)),
                       errors=str(len(errors)))
    for result in results:
        case = ET.SubElement(suite, "testcase", classname="fhir_fixtures", name=result.name)
        if result.golden is None:
            ET.SubElement(case, "failure", message="no golden file").text = \
                f"{result.request}: no .expected.json beside it"
        elif result.differences:
            failure = ET.SubElement(case, "failure",
                                    message=f"{len(result.differences)} difference(s)")
            failure.text = "\n".join(result.differences)
    for name, message in errors.items():
        case = ET.SubElement(suite, "testcase", classname="fhir_fixtures", name=name)
        ET.SubElement(case, "error", message="unreadable input").text = message
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def timeline_svg(facts: Any) -> str | None:
    """SVG of serum B12, Hb and MCV over time with injection dates, or None without labs."""
    series = [(label, sorted((lab.date, lab.value) for lab in facts.labs if lab.test == test))
              for test, label in TIMELINE_TESTS]
    series = [(label, points) for label, points in series if points]
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(len(series), 1, sharex=True, figsize=(7, 1.9 * len(series)),
                             squeeze=False)
    for ax, (label, points) in zip(axes[:, 0], series, strict=True):
        ax.plot([d for d, _ in points], [v for _, v in points], marker="o")
        ax.set_ylabel(label, fontsize=8)
        for dose in facts.treatment.doses:
            ax.axvline(dose.date, color="tab:red", alpha=0.35, linewidth=1)
    axes[0, 0].set_title("Lab timeline (red lines: B12 injections)", fontsize=9)
    fig.autofmt_xdate()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def write_html(results: list[Result], charts: dict[str, str | None], path: Path) -> None:
    """A page per replay run: each request's outcome, readable cards and timeline."""
    parts = ["<!doctype html><meta charset='utf-8'><title>b12-cds replay</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
             ".ok{color:green}.bad{color:#b00}pre{background:#f5f5f5;padding:.5em}</style>",
             f"<h1>b12-cds replay: {sum(r.matched for r in results)}/{len(results)} match</h1>"]
    for result in results:
        state = ("ok", "matches golden") if result.matched else (
            "bad", "no golden" if result.golden is None else "differs from golden")
        parts.append(f"<h2>{html.escape(result.name)} "
                     f"<span class='{state[0]}'>({state[1]})</span></h2>")
        parts.append(f"<pre>{html.escape(chr(10).join(describe(result)))}</pre>")
        if result.differences:
            parts.append("<pre class='bad'>" + html.escape("\n".join(result.differences))
                         + "</pre>")
        if charts.get(result.name):
            parts.append(charts[result.name])
    path.write_text("\n".join(parts), encoding="utf-8")
