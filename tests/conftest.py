"""Hypothesis profiles: "dev" for quick local runs, "ci" (chosen when CI is set) for more examples.

``HYPOTHESIS_PROFILE=ci python -m pytest`` runs CI's profile locally. The profile is loaded here,
before any test module is imported: ``@given`` takes the settings in force when it decorates a
test, so a module must not load a profile of its own. A property that needs a count of its own
passes it to ``@settings``, which wins over the profile (and so is not raised in CI). The optional
extras are handled by the conftest.py at the root of the repository.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# deadline=None everywhere: example times on a loaded 2-core machine vary too much for a deadline.
settings.register_profile("dev", deadline=None, max_examples=60)
# CI: at least 100 examples (tests/test_properties.py takes ~2 s with 60 examples, ~6 s with 200),
# derandomized so that a run is reproducible, no example database, and the blob to replay a failure.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=200,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)


def pytest_report_header(config):
    return f"hypothesis profile: {PROFILE!r}"
