"""Engine soak (a benchmark: prints numbers, asserts nothing about speed).

    python bench/soak.py --n 100000 --threads 4     # RSS before/after, errors, throughput

The in-process time per pipeline stage is printed by bench/latency.py (`make bench`).

Every evaluation is a distinct patient (the fixture's patient id is rewritten), served by one
app shared by all threads, as gunicorn's threads would. Exit 1 on any error.
"""

from __future__ import annotations

import argparse
import array
import json
import re
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds import create_app  # noqa: E402

_PATIENT = re.compile(r"(?<![A-Za-z0-9])p\d\d(?![0-9])")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def templates() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "fhir_fixtures").glob("*.json")):
        if path.name.endswith(".expected.json"):
            continue
        text = path.read_text()
        out.append((f"b12-{json.loads(text)['hook']}", _PATIENT.sub("__PID__", text)))
    return out


def soak(n: int, threads: int) -> int:
    app = create_app({"NOW": "2026-06-01"})
    pipeline = app.extensions["b12cds"]
    cases = templates()
    errors: Counter[str] = Counter()
    latencies = array.array("d", bytes(8 * n))  # preallocated: the soak measures the service

    def one(i: int) -> None:
        service, template = cases[i % len(cases)]
        body = json.loads(template.replace("__PID__", f"s{i:07d}"))
        started = time.perf_counter()
        try:
            pipeline.call(service, body)
        except Exception as exc:  # counted and reported: the point of a soak
            errors[type(exc).__name__] += 1
        latencies[i] = time.perf_counter() - started

    warmup = min(10_000, n // 5)
    checkpoints = []
    step = max((n - warmup) // 10, 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        # warm up on the same threads: each thread's allocator arena and caches fill first
        list(pool.map(one, range(warmup)))
        before = rss_mib()
        started = time.perf_counter()
        for start in range(warmup, n, step):
            list(pool.map(one, range(start, min(start + step, n))))
            checkpoints.append(f"{min(start + step, n)}:{rss_mib():.1f}")
    wall = time.perf_counter() - started
    after = rss_mib()
    done = n - warmup
    lat = sorted(latencies[warmup:]) or [0.0]
    print(f"evaluations        {n} ({warmup} warm-up + {done} measured, {threads} threads)")
    print(f"errors             {sum(errors.values())} {dict(errors)}")
    print(f"wall time          {wall:.1f} s  ({done / wall:.0f} evaluations/s)" if wall else "")
    print(f"per call (ms)      mean {statistics.fmean(lat) * 1000:.2f}  "
          f"p50 {lat[len(lat) // 2] * 1000:.2f}  p99 {lat[int(len(lat) * 0.99)] * 1000:.2f}")
    print(f"RSS (MiB)          after warm-up {before:.1f}  end {after:.1f}  "
          f"growth {(after - before) / before * 100:+.1f}%")
    print(f"RSS checkpoints    {'  '.join(checkpoints)}")
    return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    return soak(args.n, args.threads)


if __name__ == "__main__":
    sys.exit(main())
