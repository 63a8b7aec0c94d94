"""The one base class of every error a user can act on.

``str(error)`` says what is wrong and, after ``; ``, how to fix it (the ``hint``). Entry points
(:func:`mlrec.core.cli.run`) print that one line and exit 2 instead of a traceback; the Flask
service renders its own subclasses (:mod:`mlrec.online.errors`) as JSON. Anything that is not an
``MlrecError`` is a bug and keeps its traceback.
"""

from __future__ import annotations


class MlrecError(Exception):
    """A user-fixable error: ``message`` says what is wrong, ``hint`` what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message
