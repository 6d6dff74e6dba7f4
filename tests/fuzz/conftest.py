"""Hypothesis profiles for the fuzz suite: "ci" (default, a few seconds, deterministic) and
"fuzz" (QBENCH_FUZZ=1, used by ``make fuzz``: >= 10,000 examples across the suite)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "derandomize": True, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large]}
# per test; the suite has 9 property tests, so 1,200 each is >= 10,800 examples under "fuzz"
# (QBENCH_FUZZ_EXAMPLES overrides the per-test count of the "fuzz" profile)
settings.register_profile("ci", max_examples=40, **_COMMON)
settings.register_profile("fuzz", **_COMMON,
                          max_examples=int(os.environ.get("QBENCH_FUZZ_EXAMPLES", "1200")))
settings.load_profile("fuzz" if os.environ.get("QBENCH_FUZZ") == "1" else "ci")
