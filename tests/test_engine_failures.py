"""When durable-rules fails on a batch, `Engine.evaluate` raises EngineError and the process lives.

Regression: a failed batch left its session with the `__begin__` fact stored but no action run,
and `delete_state` on it (in `finally`) segfaulted the process - a gunicorn worker, in service.
The checks run in a child interpreter so that a regression fails this test, not the whole run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import datetime

    import cds.rulebook
    from cds.config import BUNDLED_RULES
    from cds.engine import Engine, EngineError

    engine = Engine(cds.rulebook.load(BUNDLED_RULES))
    patient = {"type": "patient", "age_years": 50, "sex": "male"}
    failing = {
        "untyped-fact": [patient, {"x": 1}],  # refused before durable-rules sees it
        "not-serialisable": [{**patient, "seen": datetime.date(2026, 6, 1)}],
        "lone-surrogate": [{**patient, "sex": "\\ud800"}],  # refused by durable's JSON reader
    }
    for name, facts in failing.items():
        # more failures than durable-rules' ~1024 live sessions: failed sessions are deleted too
        for n in range(1_100):
            try:
                engine.evaluate(facts)
            except EngineError as exc:
                assert exc.__cause__ is not None or name == "untyped-fact", name
            else:
                raise SystemExit(f"{name}: evaluation {n} did not raise EngineError")
        print(name, "raised EngineError 1100 times", flush=True)
    result = engine.evaluate([patient])
    assert result.slots["phase"] == "insufficient-data", result.slots
    print("engine still answers")
""")


def test_failed_batches_raise_engine_error_and_do_not_crash_the_process():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, (
        f"exit {done.returncode} (-11 is a segfault)\nstdout:\n{done.stdout}\n"
        f"stderr:\n{done.stderr[-3000:]}")
    assert done.stdout.splitlines() == [
        "untyped-fact raised EngineError 1100 times",
        "not-serialisable raised EngineError 1100 times",
        "lone-surrogate raised EngineError 1100 times",
        "engine still answers",
    ]
