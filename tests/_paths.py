"""Both kernel paths for one test module: numpy, and the compiled kernels of ``gaussum[fast]``.

A module that imports `kernel_path` runs every test twice: once with the numpy path forced, once
with the compiled kernels forced for inputs of any size (`gaussum._compiled.forced`), so the same
assertions hold the compiled path to the numpy path's accuracy contract. The compiled run is
skipped, naming the extra, where numba is not installed (CI installs it, and fails on skips).
The fixture is module-scoped so that hypothesis's ``@given`` tests can use it.
"""

from __future__ import annotations

import pytest

from gaussum import _compiled


@pytest.fixture(scope="module", params=["numpy", "compiled"], autouse=True)
def kernel_path(request):
    """The kernel path forced for the module's tests: ``"numpy"`` or ``"compiled"``."""
    if request.param == "compiled" and not _compiled.available():
        pytest.skip("needs numba, not installed: pip install 'gaussum[fast]'")
    with _compiled.forced(request.param):
        yield request.param
