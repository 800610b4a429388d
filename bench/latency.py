"""Latency benchmark: the service as `make run` serves it, against a floor app served the same way.

The floor is Flask doing only `json.loads` of the same body and answering no cards (gunicorn, same
worker count). Requests alternate between the two. For order-select with 10, 200 and 2,000
observations (about 10 of them B12-relevant) it prints p50/p99 latency, throughput with 1 and 4
concurrent clients, and the ratio to the floor; then the in-process time per pipeline stage.
Numbers only: nothing here passes or fails on speed.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds import cards, create_app, facts, fhir, fhir_client, hooks  # noqa: E402

SIZES = (10, 200, 2000)
WORKERS = "2"
REQUESTS = 200  # per size and server, one client
CONCURRENT = 400  # per size and server, for the throughput runs


def body_with(n_obs: int) -> bytes:
    """order-select for the metformin fixture, padded to `n_obs` observations (~10 relevant)."""
    base = json.loads((ROOT / "fhir_fixtures" / "os-metformin-deficient.json").read_text())
    entries = base["prefetch"]["labs"]["entry"]
    template = entries[0]["resource"]
    relevant = []
    for i, (code, value, unit) in enumerate(
        [("2132-9", 150, "pg/mL"), ("718-7", 11.2, "g/dL"), ("787-2", 104, "fL")] * 4
    ):
        obs = copy.deepcopy(template)
        obs.update(id=f"rel-{i}", effectiveDateTime=f"2026-0{1 + i % 5}-1{i % 9}")
        obs["code"] = {"coding": [{"system": "http://loinc.org", "code": code}]}
        obs["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                                "code": unit}
        relevant.append(obs)
    relevant = relevant[:10]
    filler = []
    for i in range(max(n_obs - len(relevant), 0)):
        obs = copy.deepcopy(template)
        obs.update(id=f"other-{i}", effectiveDateTime="2026-04-01")
        obs["code"] = {"coding": [{"system": "http://loinc.org", "code": "2345-7",
                                   "display": "Glucose [Mass/volume] in Serum or Plasma"}]}
        obs["valueQuantity"] = {"value": 5.4 + i % 3, "unit": "mmol/L",
                                "system": "http://unitsofmeasure.org", "code": "mmol/L"}
        filler.append(obs)
    base["prefetch"]["labs"]["entry"] = [{"resource": r} for r in relevant + filler][:n_obs]
    return json.dumps(base).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/cds-services", timeout=2)
            return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit(f"server did not start: {argv}")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def post(url: str, body: bytes) -> float:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        if response.status != 200:
            raise SystemExit(f"{url}: HTTP {response.status}")
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)] * 1000


def throughput(url: str, body: bytes, clients: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(lambda _: post(url, body), range(CONCURRENT)))
    return CONCURRENT / (time.perf_counter() - started)


def stage_times(body: bytes, n: int = 50) -> dict[str, float]:
    app = create_app({"NOW": "2026-06-01", "DB": str(Path(tempfile.mkdtemp()) / "s.db")})
    p = app.extensions["b12cds"]
    totals = dict.fromkeys(("decode", "parse", "gather", "facts", "engine", "cards"), 0.0)
    for _ in range(5):  # warm-up: the first calls build the FHIR models' validators
        p.call("b12-order-select", json.loads(body))
    for _ in range(n):
        t = [time.perf_counter()]
        data = json.loads(body)
        t.append(time.perf_counter())
        request = hooks.parse_request(data, "order-select")
        t.append(time.perf_counter())
        fetched, gaps = fhir_client.fetch_missing(request, p.prefetch, p.fetch)
        record = fhir.gather(replace(request, prefetch={**request.prefetch, **fetched}),
                             p.rulebook, [str(g) for g in gaps])
        t.append(time.perf_counter())
        clinical = facts.build(record, p.rulebook, date(2026, 6, 1), p.regimen_name)
        t.append(time.perf_counter())
        evaluation = p.engine.evaluate(clinical.engine_facts())
        t.append(time.perf_counter())
        ctx = cards.CardContext(p.regimen_name, p.rulebook.regimens[p.regimen_name],
                                request.hook_instance, None, request.hook, request.patient_id)
        cards.render(evaluation, clinical, ctx)
        t.append(time.perf_counter())
        for name, a, b in zip(totals, t, t[1:], strict=False):
            totals[name] += (b - a) / n * 1000
    return totals


def main() -> int:
    db = Path(tempfile.mkdtemp()) / "bench.sqlite3"
    app_port, floor_port = free_port(), free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "WEB_CONCURRENCY": WORKERS, "CDS_DB": str(db),
           "CDS_NOW": "2026-06-01"}
    cds = str(Path(sys.executable).parent / "cds")
    servers = [start([cds, "serve"], {**env, "PORT": str(app_port)}, app_port)]
    try:
        servers.append(start([sys.executable, "-m", "gunicorn", "--bind",
                              f"127.0.0.1:{floor_port}", "--workers", WORKERS, "--chdir",
                              str(ROOT / "bench"), "floor_app:app"], env, floor_port))
    except SystemExit:
        stop(servers[0])
        raise
    app_url = f"http://127.0.0.1:{app_port}/cds-services/b12-order-select"
    floor_url = f"http://127.0.0.1:{floor_port}/cds-services/b12-order-select"
    rows = []
    try:
        for n in SIZES:
            body = body_with(n)
            for url in (app_url, floor_url):  # warm-up
                for _ in range(20):
                    post(url, body)
            app_t, floor_t = [], []
            for _ in range(REQUESTS):  # alternate, so drift hits both alike
                app_t.append(post(app_url, body))
                floor_t.append(post(floor_url, body))
            rows.append({
                "n": n, "kb": len(body) / 1024,
                "app_p50": pct(app_t, 0.5), "app_p99": pct(app_t, 0.99),
                "floor_p50": pct(floor_t, 0.5), "floor_p99": pct(floor_t, 0.99),
                "app_rps1": throughput(app_url, body, 1),
                "floor_rps1": throughput(floor_url, body, 1),
                "app_rps4": throughput(app_url, body, 4),
                "floor_rps4": throughput(floor_url, body, 4),
                "stages": stage_times(body),
            })
    finally:
        for server in servers:
            stop(server)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    print(f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
          f"gunicorn {WORKERS} workers each, {REQUESTS} alternating requests per size")
    print()
    print("| observations | body KiB | p50 ms (floor) | p99 ms (floor) | p50 ratio | "
          "req/s 1 client (floor) | req/s 4 clients (floor) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']} | {r['kb']:.0f} | {r['app_p50']:.2f} ({r['floor_p50']:.2f}) | "
              f"{r['app_p99']:.2f} ({r['floor_p99']:.2f}) | {r['app_p50'] / r['floor_p50']:.2f}x | "
              f"{r['app_rps1']:.0f} ({r['floor_rps1']:.0f}) | "
              f"{r['app_rps4']:.0f} ({r['floor_rps4']:.0f}) |")
    print()
    print("in-process ms per call by stage (mean of 50):")
    print("| observations | " + " | ".join(rows[0]["stages"]) + " | total |")
    print("|---:|" + "---:|" * (len(rows[0]["stages"]) + 1))
    for r in rows:
        s = r["stages"]
        print(f"| {r['n']} | " + " | ".join(f"{v:.3f}" for v in s.values())
              + f" | {sum(s.values()):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
