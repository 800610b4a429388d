"""The `cds` command: serve the service, or answer a hook request file in-process."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from cds.config import BUNDLED_RULES
from cds.errors import CdsError, RuleFileError


def serve(args: argparse.Namespace) -> int:
    """Serve with gunicorn on HOST:PORT with WEB_CONCURRENCY workers."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8080")
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    from cds.app import create_app

    create_app()  # fail fast, before forking workers, on a malformed rule file
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", workers,
            "--access-logfile", "-", "cds.wsgi:app"]
    os.execv(sys.executable, argv)
    return 0  # not reached


def call(args: argparse.Namespace) -> int:
    """Answer one hook request file in-process and print the response JSON."""
    from cds.app import create_app

    app = create_app()
    pipeline = app.extensions["b12cds"]
    try:
        body = json.loads(Path(args.request).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        print(f"cds: cannot read {args.request}: {exc}", file=sys.stderr)
        return 2
    try:
        outcome = pipeline.call(args.service, body)
    except CdsError as exc:
        print(json.dumps(exc.to_json(), indent=2))
        return 1
    print(json.dumps({"cards": outcome.cards}, indent=2))
    return 0


def replay(args: argparse.Namespace) -> int:
    """Replay requests in-process against their goldens: exit 0 all match, 1 a mismatch, 2
    unreadable input."""
    from cds import replay as rp
    from cds import report

    _quiet_call_log()
    results, errors = [], {}
    for path in rp.find_requests(args.paths):
        try:
            result = rp.run(path)
        except rp.UnreadableFixture as exc:
            errors[path.name] = str(exc)
            print(f"{path.name}  UNREADABLE: {exc}")
            continue
        results.append(result)
        print("\n".join(rp.describe(result)))
        if args.update:
            rp.write_golden(result)
            print("  golden written")
        elif result.golden is None:
            print("  NO GOLDEN (write one with --update)")
        elif result.differences:
            print("  MISMATCH")
            print("\n".join(f"    {d}" for d in result.differences))
        else:
            print("  ok: matches golden")
    if args.junit:
        report.write_junit(results, errors, Path(args.junit))
    if args.html:
        charts = {r.name: _chart(r) for r in results}
        report.write_html(results, charts, Path(args.html))
    matched = sum(r.matched for r in results)
    print(f"\n{matched} matched, {len(results) - matched} mismatched or without golden, "
          f"{len(errors)} unreadable")
    if errors or not (results or errors):
        return 2
    return 0 if args.update or matched == len(results) else 1


def _chart(result) -> str | None:
    from cds import replay as rp
    from cds import report

    body = json.loads(result.request.read_text())
    pipeline = rp.app_for(result.settings).extensions["b12cds"]
    try:
        outcome = pipeline.call(f"b12-{body['hook']}", body)
    except CdsError:
        return None
    return report.timeline_svg(outcome.facts)


def explain(args: argparse.Namespace) -> int:
    """Print the facts, every rule fired or not (and the first failed condition), the result."""
    from cds import explain as ex
    from cds import replay as rp

    _quiet_call_log()
    try:
        body = json.loads(Path(args.request).read_text(encoding="utf-8"))
        hook = body["hook"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cds: cannot read {args.request}: {exc}", file=sys.stderr)
        return 2
    golden = rp.golden_path(Path(args.request))
    settings = rp.settings_of(json.loads(golden.read_text()) if golden.exists() else None)
    pipeline = rp.app_for(settings).extensions["b12cds"]
    try:
        outcome = pipeline.call(f"b12-{hook}", body)
    except CdsError as exc:
        print(json.dumps(exc.to_json(), indent=2))
        return 1
    print("\n".join(ex.explain(outcome, pipeline.rulebook)))
    return 0


def _quiet_call_log() -> None:
    """In-process replays print their own report; the per-call JSON log is for servers."""
    logging.getLogger("cds.calls").disabled = True


def lint(args: argparse.Namespace) -> int:
    """Check rule files, codes and fixture coverage; exit 1 on any finding."""
    from cds.lint import lint as run_lint

    fixtures = None if args.no_fixtures else Path(args.fixtures)
    findings = run_lint(Path(args.rules), fixtures)
    for finding in findings:
        print(finding)
    print(f"{len(findings)} finding(s)")
    return 1 if findings else 0


def feedback_list(args: argparse.Namespace) -> int:
    """Print the stored feedback (no patient data is stored)."""
    rows = _store().feedback()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no feedback stored")
    for r in rows:
        flag = "" if r["known_card"] else "  [unknown card]"
        reason = f" reason={r['override_code']}" if r["override_code"] else ""
        print(f"{r['received_at']}  {r['service']}  card {r['card']}  {r['outcome']}{reason}"
              f"  phase={r['card_phase'] or '-'}  rules={','.join(r['card_rules'] or [])}{flag}")
    return 0


def feedback_stats(args: argparse.Namespace) -> int:
    """Print acceptance and override rates per rule."""
    rows = _store().stats()
    print(f"{'rule':45s} {'cards':>6s} {'feedback':>8s} {'accepted':>9s} {'overridden':>10s}")
    for r in rows:
        rate = (f"{r['acceptance_rate']:.0%}/{r['override_rate']:.0%}"
                if r["feedback"] else "-")
        print(f"{r['rule']:45s} {r['cards']:6d} {r['feedback']:8d} {r['accepted']:9d} "
              f"{r['overridden']:10d}  {rate}")
    return 0


def _store():
    from cds import config, feedback

    return feedback.Store(config.load()["DB"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cds", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve with gunicorn (HOST, PORT, WEB_CONCURRENCY)").set_defaults(
        func=serve)
    p_call = sub.add_parser("call", help="answer a hook request file in-process")
    p_call.add_argument("service", help="service id, e.g. b12-patient-view")
    p_call.add_argument("request", help="path to a hook request JSON file")
    p_call.set_defaults(func=call)
    p_replay = sub.add_parser("replay", help="replay hook requests against their goldens")
    p_replay.add_argument("paths", nargs="+", help="request files or directories")
    p_replay.add_argument("--junit", help="write a JUnit XML report here")
    p_replay.add_argument("--update", action="store_true", help="rewrite the goldens")
    p_replay.add_argument("--html", help="write an HTML report with lab timelines here")
    p_replay.set_defaults(func=replay)
    p_explain = sub.add_parser("explain", help="why each rule fired or did not")
    p_explain.add_argument("request", help="a hook request JSON file")
    p_explain.set_defaults(func=explain)
    p_lint = sub.add_parser("lint", help="check rules, codes and fixture coverage")
    p_lint.add_argument("rules", nargs="?", default=str(BUNDLED_RULES))
    p_lint.add_argument("--fixtures", default=str(BUNDLED_RULES.parent / "fhir_fixtures"))
    p_lint.add_argument("--no-fixtures", action="store_true", help="skip the coverage check")
    p_lint.set_defaults(func=lint)
    p_feedback = sub.add_parser("feedback", help="stored CDS Hooks feedback (CDS_DB)")
    fb = p_feedback.add_subparsers(dest="action", required=True)
    p_list = fb.add_parser("list", help="print every stored feedback")
    p_list.add_argument("--json", action="store_true", help="as JSON")
    p_list.set_defaults(func=feedback_list)
    fb.add_parser("stats", help="acceptance and override rates per rule").set_defaults(
        func=feedback_stats)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RuleFileError as exc:
        print(f"cds: rule files are invalid: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
