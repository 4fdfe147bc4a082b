"""The OpenAPI spec as the service really answers: BentoML's, with every status each
endpoint can return, one error shape (problem.py) and required bodies.

BentoML documents 400/404/500 for every endpoint with bodies it does not send (and
nothing of what the edge answers); here each endpoint lists exactly its own statuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modelops.serving.edge import Endpoint
from modelops.serving.problem import MEDIA_TYPE, Problem

# Every POST endpoint, from the edge's checks and BentoML's validation.
EDGE = {
    400: "invalid JSON, a key given twice, or a field that breaks its rule (errors names it)",
    413: "the body exceeds serving.max_body_bytes",
    415: "a body that is not application/json",
    500: "a server error; the server log has the details",
}
# What each endpoint adds (by path), and the statuses of the GET routes.
OWN: Mapping[str, Mapping[int, str]] = {
    "/predict": {
        422: "the model could not score this record (or scored it NaN/inf); nothing was logged",
        503: "no desired state has been applied yet (see /metadata)",
    },
    "/predict_batch": {
        422: "the model could not score a record of the batch; nothing was logged",
        503: "no desired state has been applied yet (see /metadata)",
    },
    "/feedback": {
        404: "no prediction was answered for that request id or record id",
        409: "that prediction already has a label",
        503: "the prediction log database is unavailable",
    },
    "/admin/reload": {
        400: "the desired-state file is refused (the detail says why); nothing changed",
        401: "no valid admin token (checked before the body is read)",
    },
    "/readyz": {503: "not ready: a model the desired state names is not loaded"},
    "/livez": {503: "not alive"},
    "/healthz": {503: "not alive"},
}
PREDICTION = "#/components/schemas/Prediction"


def truthful(spec: dict[str, Any], endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    """``spec`` (BentoML's, as a dict) with the service's real answers."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("InvalidArgument", "NotFound", "InternalServerError"):
        schemas.pop(unused, None)
    document = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(document.pop("$defs"))
    schemas["Problem"] = document
    api = {e.path: e for e in endpoints}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            statuses = dict(OWN.get(path, {}))
            if path in api and method == "post":
                statuses = EDGE | statuses
                if api[path].body:
                    operation["requestBody"]["required"] = True
            # BentoML keys its own routes' statuses by str, the API's by int
            responses = {"200": operation["responses"].get(200) or operation["responses"]["200"]}
            for status, meaning in sorted(statuses.items()):
                responses[str(status)] = {
                    "description": meaning,
                    "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
            operation["responses"] = responses
    # /predict answers a Prediction, whose score is null under shadow automation
    answer = spec["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    answer["schema"] = {"$ref": PREDICTION}
    return spec
