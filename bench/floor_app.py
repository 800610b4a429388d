"""The floor for the latency benchmark: Flask decoding the same body and answering no cards."""

import json

from flask import Flask, request

app = Flask(__name__)


@app.get("/cds-services")
def discovery() -> dict:
    return {"services": []}


@app.post("/cds-services/<service_id>")
def call(service_id: str) -> dict:
    json.loads(request.get_data())
    return {"cards": []}
