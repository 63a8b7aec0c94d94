"""The service's named errors; each knows its HTTP status. One handler in app.py renders them.

Every error is an :class:`~mlrec.core.errors.MlrecError` (``message`` + ``hint``), and its JSON body
is ``{"error": message, **details}`` plus ``"hint"`` when there is one: ``field`` for input the
client got wrong, ``dependency`` for a service that is down. :func:`as_api_error` turns anything
else (werkzeug's 404/405/413, a bug) into one of these, so no response is ever HTML or a traceback.
"""

from __future__ import annotations

from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from mlrec.core.errors import MlrecError

ADMIN_TOKEN_ENV = "MLREC_ADMIN_TOKEN"


class ApiError(MlrecError):
    status: int = 500

    def __init__(self, message: str, hint: str = "", **details: object) -> None:
        super().__init__(message, hint)
        self.details = details
        self.headers: dict[str, str] = {}

    def to_dict(self) -> dict:
        body: dict = {"error": self.message, **self.details}
        if self.hint:
            body["hint"] = self.hint
        return body


class BadRequest(ApiError):
    """Input the client got wrong; the body names the field."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


def checked_int(value: object, field: str, low: int, high: int | None = None) -> int:
    """``value`` as an int within ``[low, high]``, else :class:`BadRequest` naming ``field``.

    JSON has one number type, so 7.0 is the integer 7; ``true`` is not an integer here."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(field, f"must be an integer, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise BadRequest(field, f"must be between {low} and {high}" if high is not None else f"must be >= {low}")
    return value


class PayloadTooLarge(ApiError):
    """The body is over ``Settings.max_body_bytes``; rejected before it is read or parsed."""

    status = 413

    def __init__(self, limit: int | None) -> None:
        size = f"{limit} bytes" if limit is not None else "the configured limit"
        super().__init__(f"body: larger than {size}", "send a smaller body (MLREC_MAX_BODY_BYTES)", field="body")


class Unauthorized(ApiError):
    """``/admin/*`` without the right ``Authorization: Bearer <token>``; same answer for missing and wrong."""

    status = 401

    def __init__(self) -> None:
        super().__init__(
            "admin endpoints need a valid bearer token", f"send 'Authorization: Bearer ${ADMIN_TOKEN_ENV}'"
        )
        self.headers = {"WWW-Authenticate": 'Bearer realm="mlrec-admin"'}


class AdminDisabled(ApiError):
    """``/admin/*`` while no token is configured: off rather than open to anyone."""

    status = 404

    def __init__(self) -> None:
        super().__init__(
            "admin endpoints are disabled",
            f"set {ADMIN_TOKEN_ENV} in the server's environment to enable them, then send it as a bearer token",
        )


class DependencyUnavailable(ApiError):
    """A backing service is down or too slow; the body names it, never its stack trace."""

    status = 503

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency} unavailable", dependency=dependency, reason=reason)


class EventsNotApplied(ApiError):
    """``POST /ml/event`` got no answer from the event worker in time (not running, or died mid-batch)."""

    status = 503

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__("events not applied", hint, dependency="event worker", reason=reason)


class CatalogueMissing(ApiError):
    """``POST /ml/event`` before the offline steps wrote the catalogue's item genres."""

    status = 503

    def __init__(self, path: object) -> None:
        super().__init__(
            f"the item catalogue ({path}) is missing",
            "run the offline steps (make offline) so the server can check items and compute terms",
            dependency="catalogue",
        )


class HttpError(ApiError):
    """A werkzeug HTTP error (unknown URL, wrong method, ...) with its status, as JSON."""

    def __init__(self, exc: HTTPException) -> None:
        super().__init__(exc.description or exc.name)
        self.status = exc.code or 500
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            self.headers = {"Allow": ", ".join(exc.valid_methods)}


class InternalError(ApiError):
    """A bug: the client sees only this; the traceback goes to the server log."""

    def __init__(self) -> None:
        super().__init__("internal error")


def as_api_error(exc: BaseException, max_body_bytes: int | None = None) -> ApiError:
    """The :class:`ApiError` that answers ``exc``: itself, a mapped werkzeug error, or a 500."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestEntityTooLarge):  # a body streamed without Content-Length ran over the limit
        return PayloadTooLarge(max_body_bytes)
    if isinstance(exc, HTTPException):
        return HttpError(exc)
    return InternalError()
