"""What every gaussum.models result shares: frozen, read-only, picklable, short exact reprs; scipy optional."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import attrs
import numpy as np
import pytest

from gaussum import GaussianSummary, GroupedSummary
from gaussum.models import conditional, mean_confidence_interval, ols, pca, shrunk_covariance

S = GaussianSummary.from_moments(50, [1.0, 2.0, 3.0], [[2.0, 0.5, 0.1], [0.5, 1.0, 0.3], [0.1, 0.3, 1.5]])

# One small summary, so the values in the reprs can be checked by hand: coef = S_xx^{-1} S_xy =
# [-0.05, 0.55] / 1.75 and intercept = 3 - [1, 2] . coef = 2.4; the interval is 1 +/- t(0.95, 49) 0.2.
RESULTS = {
    "ols": (
        ols(S, y=2),
        "OLSResult(y=2, X=[0, 1], n=50, intercept=2.4, coef=[-0.0285714, 0.314286], rsquared=0.0609524)",
    ),
    "pca": (pca(S, k=2), "PCAResult(n=50, d=3, k=2, explained_variance_ratio=[0.503583, 0.337039])"),
    "shrunk": (shrunk_covariance(S), "ShrunkCovariance(method='oas', shrinkage=0.460784, d=3)"),
    "conditional": (conditional(S, [0], [2.0]), "ConditionalResult(variables=[1, 2], given=[0], mean=[2.25, 3.05])"),
    "interval": (
        mean_confidence_interval(S, 0.9),
        "MeanInterval(level=0.9, df=49, low=[0.66469, 1.7629, 2.70961], high=[1.33531, 2.2371, 3.29039])",
    ),
}


@pytest.fixture(params=sorted(RESULTS))
def result(request):
    return RESULTS[request.param]


def test_result_is_frozen_with_read_only_arrays(result):
    """No field can be set, and no array field can be written through."""
    value, _ = result
    field = attrs.fields(type(value))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(value, field, None)
    for f in attrs.fields(type(value)):
        item = getattr(value, f.name)
        if isinstance(item, np.ndarray):
            assert not item.flags.writeable, f.name


def test_result_round_trips_through_pickle_and_copies(result):
    """pickle, copy and deepcopy give an equal value."""
    value, _ = result
    for clone in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
        assert clone == value


def test_result_repr_is_short_and_exact(result):
    """The repr summarises on one line."""
    value, expected = result
    assert repr(value) == expected


def test_models_work_without_scipy_except_p_values_and_intervals():
    """Without scipy the fits run on numpy's linalg; p-values and intervals name the extra to install."""
    code = (
        "import sys\n"
        "sys.modules['scipy'] = None\n"  # makes `import scipy...` raise ImportError
        "import numpy as np\n"
        "from gaussum import GaussianSummary\n"
        "from gaussum.models import ols, pca, precision, logpdf, mahalanobis, conditional, mean_confidence_interval\n"
        "X = np.random.default_rng(0).standard_normal((40, 3))\n"
        "s = GaussianSummary.from_samples(X)\n"
        "fit = ols(s, y=2)\n"
        "design = np.column_stack([np.ones(40), X[:, :2]])\n"
        "assert np.allclose(fit.params, np.linalg.lstsq(design, X[:, 2], rcond=None)[0])\n"
        "assert np.allclose(precision(s), np.linalg.inv(np.cov(X, rowvar=False)))\n"
        "pca(s); logpdf(s, X[:3]); mahalanobis(s, X[0]); conditional(s, [0], [1.0])\n"
        "for call in (lambda: fit.pvalues, lambda: mean_confidence_interval(s)):\n"
        "    try:\n        call()\n    except ImportError as exc:\n        print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    message = "gaussum.models needs scipy for p-values and confidence intervals: pip install 'gaussum[stats]'"
    assert done.stdout.splitlines() == [message, message]


@pytest.mark.parametrize(
    ("labels", "kind"),
    [(["a", "b"], str), ([3, 7], int), (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ns]"), np.datetime64)],
)
def test_per_key_dicts_have_plain_keys_that_index_the_grouped_summary(labels, kind):
    """Dict keys are Python str/int (datetimes stay datetime64, not integers), and g[key] finds each."""
    X = np.random.default_rng(0).standard_normal((24, 3))
    g = GroupedSummary.from_samples(np.repeat(labels, 12), X)
    fits = ols(g, y=2)
    assert len(fits) == 2 and all(type(key) is kind for key in fits)
    for key, fit in fits.items():
        assert fit == ols(g[key], y=2)
