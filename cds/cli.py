"""The `cds` command: serve the service, or answer a hook request file in-process."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

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
    except (OSError, ValueError) as exc:
        print(f"cds: cannot read {args.request}: {exc}", file=sys.stderr)
        return 2
    try:
        outcome = pipeline.call(args.service, body)
    except CdsError as exc:
        print(json.dumps(exc.to_json(), indent=2))
        return 1
    print(json.dumps({"cards": outcome.cards}, indent=2))
    return 0


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
