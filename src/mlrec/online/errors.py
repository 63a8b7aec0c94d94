"""The service's named errors; each knows its HTTP status. One handler in app.py renders them."""

from __future__ import annotations


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message, self.details = message, details

    def to_dict(self) -> dict:
        return {"error": self.message, **self.details}


class BadRequest(ApiError):
    """Input the client got wrong; the body names the field."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class DependencyUnavailable(ApiError):
    """A backing service is down or too slow; the body names it, never its stack trace."""

    status = 503

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency} unavailable", dependency=dependency, reason=reason)
