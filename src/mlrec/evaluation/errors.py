"""The evaluation's one user-fixable error.

Its own module so every part of the run (held-out positives, the service, the baselines) can
raise it without importing the orchestration, and entry points can catch it by name.
"""

from __future__ import annotations

from mlrec.core.errors import MlrecError


class EvaluationError(MlrecError):
    """The evaluation cannot run as asked (service answers with an error, bad K, stale artifacts).

    ``message`` says what is wrong, ``hint`` the command or flag that fixes it.
    """
