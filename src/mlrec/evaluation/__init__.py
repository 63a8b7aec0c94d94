"""Offline-protocol quality of the online system, one module per concern.

``heldout`` what lists are scored against (held-out positives, the protocol in words);
``inputs`` the offline artifacts read; ``served`` the running service over HTTP; ``stages`` the
recall stages in the real Redis + Elasticsearch; ``baselines`` numpy baselines with one shared
signature, ``mlrec.models.item_item`` holds the math of the fitted ones (EASE, ItemKNN, ALS), ``tuning`` their
hyperparameters chosen on a validation split of the offline events; ``metrics`` the vectorized
top-K metrics; ``scoring`` one scoring for every method; ``quality`` the run that ties them
together; ``report`` the table / JSON / PNG it produces; ``errors`` the user-fixable
:class:`~mlrec.evaluation.errors.EvaluationError`.
"""
