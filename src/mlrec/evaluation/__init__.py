"""Offline-protocol quality of the online system: metric functions, the evaluation run, its report.

``metrics`` holds the vectorized top-K metrics, ``quality`` the run against the live service and
the baselines, ``report`` the table / JSON / PNG it produces.
"""
