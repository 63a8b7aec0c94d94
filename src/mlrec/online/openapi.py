"""The OpenAPI 3.1 description of the service, served at ``GET /openapi.json``.

One source of truth with the code that enforces it: :data:`REC_REQUEST` (field names, bounds,
defaults, required fields) is what :func:`mlrec.online.app.parse_request` validates against, the
limits come from :mod:`mlrec.core.constants`, and the body limits from the app's settings, so the
document cannot drift from what the service accepts. The test suite fuzzes the running chain
against this document (schemathesis) and validates it against the OpenAPI meta-schema.
"""

from __future__ import annotations

from typing import Any

import mlrec
from mlrec.core.constants import RECALL_SIZE, RESPONSE_SIZE
from mlrec.online.errors import ADMIN_TOKEN_ENV
from mlrec.online.events import MAX_EVENT_ID_LEN, MAX_EVENTS, MAX_FUTURE_S, MAX_ID, RATING_MAX, RATING_MIN

# The request body is one flat object (depth 1); anything nested deeper than this is refused
# before it is parsed, so a hostile body cannot drive the recursive JSON parser into the stack limit.
MAX_JSON_DEPTH = 16

REC_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["userid"],
    "properties": {
        "userid": {"type": "integer", "minimum": 1, "description": "The user to recommend for."},
        "size": {
            "type": "integer",
            "minimum": 1,
            "maximum": RECALL_SIZE,
            "default": RESPONSE_SIZE,
            "description": f"How many items to return (at most the {RECALL_SIZE} recalled candidates).",
        },
    },
}

EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["userid", "itemid", "rating"],
    "properties": {
        "userid": {"type": "integer", "minimum": 1, "maximum": MAX_ID, "description": "Who acted (new users too)."},
        "itemid": {"type": "integer", "minimum": 1, "maximum": MAX_ID, "description": "A catalogue item."},
        "rating": {
            "type": "integer",
            "minimum": RATING_MIN,
            "maximum": RATING_MAX,
            "description": "As in MovieLens; above 3 counts as a click.",
        },
        "timestamp": {
            "type": "integer",
            "minimum": 0,
            "description": f"Unix seconds; default now; at most {MAX_FUTURE_S} s ahead of the server's clock.",
        },
        "event_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_EVENT_ID_LEN,
            "description": "Makes the event idempotent: a repeated id changes nothing. Generated when absent.",
        },
    },
}

_EVENT_REQUEST: dict[str, Any] = {
    "oneOf": [
        {"$ref": "#/components/schemas/Event"},
        {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS, "items": {"$ref": "#/components/schemas/Event"}},
    ]
}

_EVENT_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["accepted", "duplicates", "users", "new_users", "event_ids", "folded", "updated"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 0, "description": "New events logged and applied."},
        "duplicates": {"type": "integer", "minimum": 0, "description": "Events whose event_id was already applied."},
        "users": {"type": "array", "items": {"type": "integer"}, "description": "Users whose state changed."},
        "new_users": {"type": "array", "items": {"type": "integer"}, "description": "Of those, users new to Redis."},
        "event_ids": {"type": "array", "items": {"type": "string"}, "description": "Ids of the accepted events."},
        "folded": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "Users without a retrieval vector who got one folded in from their items.",
        },
        "updated": {"type": "array", "items": {"type": "string"}, "description": "What the events changed."},
    },
}

_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What is wrong."},
        "field": {"type": "string", "description": "The request field that is wrong (400, 413)."},
        "dependency": {"type": "string", "description": "The backing service that failed (503)."},
        "reason": {"type": "string", "description": "The client error class behind a 503."},
        "hint": {"type": "string", "description": "How to fix it."},
    },
}

_REC_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["userid", "item_list"],
    "properties": {
        "userid": {"type": "integer"},
        "item_list": {
            "type": "array",
            "maxItems": RECALL_SIZE,
            "description": "Best first; never an item the user has already seen.",
            "items": {
                "type": "object",
                "required": ["itemid", "score"],
                "properties": {"itemid": {"type": "integer"}, "score": {"type": "number"}},
            },
        },
        "fallback": {
            "type": "string",
            "enum": ["popular"],
            "description": "Present when the user is unknown: the most-clicked items instead.",
        },
    },
}

_HEALTH: dict[str, Any] = {
    "type": "object",
    "required": ["status", "dependencies"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "dependencies": {
            "type": "object",
            "description": 'Each service: "ok" or a short reason.',
            "additionalProperties": {"type": "string"},
        },
        "events": {
            "type": "string",
            "description": 'The event worker behind POST /ml/event: "ok" or a short reason (does not set the status).',
        },
    },
}


def _json(schema_ref: str, description: str, headers: dict | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: dict | None = None) -> dict[str, Any]:
    return _json("Error", description, headers)


def build_spec(max_body_bytes: int, max_event_body_bytes: int | None = None) -> dict[str, Any]:
    """The whole API; ``max_body_bytes`` is the running app's 413 limit (``Settings.max_body_bytes``),
    ``max_event_body_bytes`` that of ``POST /ml/event`` (default: the same)."""
    max_event_body_bytes = max_event_body_bytes or max_body_bytes
    too_large = _error(f"The body is larger than {max_body_bytes} bytes.")
    json_body = (
        f"A JSON object (UTF-8, at most {max_body_bytes} bytes, nested at most {MAX_JSON_DEPTH} levels); "
        "every 400 names the offending field (`body` for the body as a whole)."
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mlrec recommender",
            "version": mlrec.__version__,
            "description": "Recall (Redis + Elasticsearch) then rank (Feast + Triton) for one MovieLens user.",
        },
        "paths": {
            "/ml/rec": {
                "post": {
                    "operationId": "recommend",
                    "summary": "Top items for one user",
                    "requestBody": {
                        "required": True,
                        "description": json_body,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RecRequest"}}},
                    },
                    "responses": {
                        "200": _json(
                            "RecResponse",
                            "Recommended items, scores descending.",
                            {
                                "Server-Timing": {
                                    "description": "Milliseconds per stage: redis, es, feast, assemble, triton, total.",
                                    "required": True,
                                    "schema": {"type": "string"},
                                }
                            },
                        ),
                        "400": _error("Not a JSON object, too deep, or a field out of range; `field` names it."),
                        "413": too_large,
                        "503": _error("A backing service is down or slower than the timeout; `dependency` names it."),
                    },
                }
            },
            "/ml/event": {
                "post": {
                    "operationId": "events",
                    "summary": "Log what users did; their next recommendation reflects it",
                    "description": (
                        "Each accepted event is appended to a durable log (a Redis stream in its append-only "
                        "file) and applied to the user's seen filter, recent items and genre terms in one "
                        "transaction. Every event is checked first: one bad event rejects the request and "
                        "changes nothing."
                    ),
                    "requestBody": {
                        "required": True,
                        "description": (
                            f"One event, or a list of at most {MAX_EVENTS} (UTF-8 JSON, at most "
                            f"{max_event_body_bytes} bytes); a 400 names the field, as `events[i].field` in a list."
                        ),
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventRequest"}}},
                    },
                    "responses": {
                        "200": _json("EventResponse", "What was logged and updated."),
                        "400": _error("A field is missing, of the wrong type or out of range; `field` names it."),
                        "413": _error(f"The body is larger than {max_event_body_bytes} bytes."),
                        "503": _error(
                            "Redis is down, the catalogue is not built yet, or the event worker did not apply the "
                            "events in time; `dependency` names which. Retrying with the same event_ids is safe."
                        ),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Each dependency's state",
                    "responses": {
                        "200": _json("Health", "Every dependency is ok."),
                        "503": _json("Health", "At least one dependency is not ok."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus exposition: per-stage latency histograms, request counts by status",
                    "responses": {"200": {"description": "Prometheus text format.", "content": {"text/plain": {}}}},
                }
            },
            "/admin/refresh-items": {
                "post": {
                    "operationId": "refreshItems",
                    "summary": "Re-read every item's features from Feast (after a new materialization)",
                    "description": f"Off (404) unless the server has {ADMIN_TOKEN_ENV} set; then it needs that token.",
                    "security": [{"adminToken": []}],
                    "responses": {
                        "200": {
                            "description": "The number of items now cached.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["items"],
                                        "properties": {"items": {"type": "integer", "minimum": 0}},
                                    }
                                }
                            },
                        },
                        "401": _error(
                            "Missing or wrong bearer token.",
                            {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
                        ),
                        "404": _error(f"Admin endpoints are disabled ({ADMIN_TOKEN_ENV} is not set)."),
                        "413": too_large,
                        "503": _error("Feast is down; the previous item features stay in use."),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "RecRequest": REC_REQUEST,
                "RecResponse": _REC_RESPONSE,
                "Event": EVENT,
                "EventRequest": _EVENT_REQUEST,
                "EventResponse": _EVENT_RESPONSE,
                "Health": _HEALTH,
                "Error": _ERROR,
            },
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"The value of {ADMIN_TOKEN_ENV} in the server's environment.",
                }
            },
        },
    }
