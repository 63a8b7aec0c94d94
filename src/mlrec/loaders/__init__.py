"""Offline -> online: push the offline artifacts into Redis, Elasticsearch, Feast and Triton.

One module per store, one ``load_*`` function per loader script under ``offline_to_online/``.
Each ends with the seed's kind of validation — reading back what it wrote from the real service —
and raises :class:`LoadCheckError` (the script exits non-zero) when the online copy disagrees with
the offline artifact. :mod:`mlrec.loaders.parity` proves the whole online path equals the offline one.
"""

from mlrec.core.errors import MlrecError


class LoadCheckError(MlrecError, RuntimeError):
    """What the online store returned differs from the offline artifact."""
