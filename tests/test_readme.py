"""Every ```python block of README.md runs, and every result it shows in a comment is true.

Blocks are found by their fence; each runs in a fresh namespace, in a temporary directory, with
matplotlib's Agg backend. The recipes for engines that CI does not install (Ray, and the
dask.bag / concurrent.futures fragment built on an undefined ``summarise_shard``) are skipped, and
so is the Spark block, which tests/test_spark.py runs in its own Spark session; their number is
asserted so that a new snippet cannot be skipped silently. Each runnable
block is found by a phrase it contains and has its own test, which checks the commented results
line by line against numpy on the raw rows or against the printed value.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# A recipe for an engine not installed in CI (Ray's decorators, or the fragment that maps an
# undefined summarise_shard; word boundaries: "ray" is inside "array"), or the gaussum.spark
# block, which needs a Spark session and is run by tests/test_spark.py.
ENGINE_RECIPE = re.compile(r"\bray\.(?:remote|get)\b|\bgaussum\.spark\b|\bsummarise_shard\b")
N_ENGINE_RECIPES = 3

# The phrase that identifies each runnable block, and so the test that checks it.
TOUR = "GaussianSummary.merge_all([a, b]).isclose(s)"
GROUPED = "GroupedSummary.from_samples(users, X)"
INFERENCE = "hotelling_t2(a, b, equal_covariances=False)"
DASK = "summarize(x, compute=True)"
WEIGHTS = "from_samples(X, aweights=precision)"
MODELS = "fit = ols(s, y=3)"
#: Every runnable block, by its phrase; a test below checks each.
CHECKED = (TOUR, GROUPED, INFERENCE, DASK, WEIGHTS, MODELS)


def python_blocks() -> list[tuple[int, str]]:
    """(line number of the first code line, code) of every ```python block of the README."""
    return [
        (README.count("\n", 0, m.start(1)) + 1, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```[ \t]*$", README, re.S | re.M)
    ]


def runnable_blocks() -> list[tuple[int, str]]:
    return [(line, code) for line, code in python_blocks() if not ENGINE_RECIPE.search(code)]


def block(phrase: str) -> tuple[int, str]:
    """The one runnable block that contains `phrase`."""
    found = [(line, code) for line, code in runnable_blocks() if phrase in code]
    assert len(found) == 1, f"{len(found)} runnable README blocks contain {phrase!r}"
    return found[0]


def run_block(phrase: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
    """Execute the block containing `phrase` in a fresh namespace; return its code and namespace."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    line, code = block(phrase)
    namespace: dict[str, Any] = {"__name__": "readme_block"}
    # Padding with blank lines makes tracebacks give the README's own line numbers.
    exec(compile("\n" * (line - 1) + code, str(ROOT / "README.md"), "exec"), namespace)
    return code, namespace


def shown(code: str, namespace: dict[str, Any], expression: str, comment: str) -> Any:
    """The value of `expression`, after checking that the block shows it with `comment`."""
    lines = [ln for ln in code.splitlines() if ln.startswith(expression)]
    assert lines, f"no line of the block starts with {expression!r}"
    assert any(comment in ln.partition("#")[2] for ln in lines), (expression, comment, lines)
    return eval(expression, namespace)


def rows_with_moments(rng: np.random.Generator, n: int, mean: list[float], variances: list[float]) -> np.ndarray:
    """n rows whose sample mean and per-column sample variance (ddof=1) are exactly as given."""
    Z = rng.standard_normal((n, len(mean)))
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0, ddof=1)
    return np.asarray(mean) + Z * np.sqrt(variances)


def test_every_python_block_is_run_or_an_engine_recipe():
    """The README's python blocks are the ones checked below, the Spark block and two engine recipes."""
    blocks = python_blocks()
    recipes = [code for _, code in blocks if ENGINE_RECIPE.search(code)]
    assert len(recipes) == N_ENGINE_RECIPES, recipes
    assert sum("@ray.remote" in c for c in recipes) == 1
    assert sum("from gaussum.spark import" in c for c in recipes) == 1
    assert sum("summarise_shard" in c for c in recipes) == 1
    checked = {block(phrase) for phrase in CHECKED}
    assert len(checked) == len(CHECKED)
    assert set(runnable_blocks()) == checked, "a README block has no test here"
    assert len(blocks) == len(CHECKED) + N_ENGINE_RECIPES


def test_short_tour(tmp_path, monkeypatch):
    """The tour runs, its asserts hold, and each commented result matches numpy on the raw rows."""
    code, ns = run_block(TOUR, tmp_path, monkeypatch)
    from gaussum import GaussianSummary

    X, s, a = ns["X"], ns["s"], ns["a"]
    assert X.shape == (10_000, 3)
    cov = shown(code, ns, "s.covariance(ddof=1)", "matches np.cov(X, rowvar=False)")
    reference = np.cov(X, rowvar=False)
    np.testing.assert_allclose(cov, reference, rtol=1e-12, atol=1e-12 * np.abs(np.diag(reference)).max())
    variance, std = shown(code, ns, "s.variance(), s.std()", "(d,)")
    np.testing.assert_allclose(variance, X.var(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(std, X.std(axis=0, ddof=1), rtol=1e-12)
    correlation = shown(code, ns, "s.correlation()", "(d, d)")
    np.testing.assert_allclose(correlation, np.corrcoef(X, rowvar=False), rtol=0, atol=1e-12)
    diagonal = shown(code, ns, "s.to_diagonal()", "per-variable sums of squares")
    np.testing.assert_allclose(diagonal.M2, ((X - X.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-12)

    # "DataFrames in, labelled results out": aligned by name, labelled, exact marginals
    import pandas as pd

    df = ns["df"]
    frame = shown(code, ns, "(left + right).covariance_frame()", "equals pd.concat([df, df]).cov()")
    assert list(frame.index) == list(frame.columns) == ["temp", "pressure", "time"]
    both = pd.concat([df, df])
    # pandas' own cov loses digits at offset 1.7e9: compare on the centred frame (shift-invariant).
    np.testing.assert_allclose(frame.to_numpy(), (both - both.mean()).cov().to_numpy(), rtol=1e-9)
    assert shown(code, ns, 'left[["time", "temp"]].names', "('time', 'temp')") == ("time", "temp")

    # "one more row" and "a weighted batch"
    assert "t = s.update(X[0])" in code and "t = s.update(X[:100], weights=np.full(100, 2.0))" in code
    # Merging and updating store each part's mean rounded to u |mean|; the README's Accuracy
    # section gives the floor this sets: about u |mean| / spread, relative to the variances.
    scale = np.diag(reference).max()
    floor = np.finfo(float).eps * np.abs(X.mean(axis=0)).max() / np.sqrt(np.diag(reference).min()) * scale
    one_more = s.update(X[0])
    np.testing.assert_allclose(one_more.covariance(), np.cov(np.vstack([X, X[:1]]), rowvar=False), rtol=0, atol=floor)
    weighted = ns["t"]
    fweights = np.r_[np.ones(10_000), np.full(100, 2.0)]
    assert weighted.n == fweights.sum()
    np.testing.assert_allclose(
        weighted.covariance(), np.cov(np.vstack([X, X[:100]]), rowvar=False, fweights=fweights), rtol=0, atol=floor
    )
    # "remove a part": (a + b) - b is a's data (removing 60% costs a few times the floor)
    assert ns["r"].n == a.n
    np.testing.assert_allclose(ns["r"].covariance(), np.cov(X[:4_000], rowvar=False), rtol=0, atol=4 * floor)

    # "the pooled sample's mean and covariance", against rows that have the groups' moments
    mean, pooled_cov = shown(code, ns, "pooled.mean, pooled.covariance()", "mean and covariance")
    rng = np.random.default_rng(1)
    rows = np.vstack([rows_with_moments(rng, 120, [1.0, 2.0], [0.5, 0.8]),
                      rows_with_moments(rng, 80, [1.4, 1.7], [0.6, 0.9])])
    np.testing.assert_allclose(mean, rows.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(pooled_cov, rows.var(axis=0, ddof=1), rtol=1e-12)

    # "JSON-safe, exact round trip"
    assert GaussianSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_grouped_summaries(tmp_path, monkeypatch):
    """The grouped block runs; its repr, shape, per-key and round-trip comments are what it prints."""
    code, ns = run_block(GROUPED, tmp_path, monkeypatch)
    from gaussum import GaussianSummary, GroupedSummary

    users, X, g, both = ns["users"], ns["X"], ns["g"], ns["both"]
    assert "# GroupedSummary(groups=3, n=10_000, d=3, full, ...)" in code
    assert repr(g).startswith("GroupedSummary(groups=3, n=10_000, d=3, full, ")
    bob = ns["g"]["bob"]
    assert "a GaussianSummary per key" in code and isinstance(bob, GaussianSummary)
    np.testing.assert_allclose(
        shown(code, ns, 'g["bob"].covariance()', "a GaussianSummary per key; its covariance"),
        np.cov(X[users == "bob"], rowvar=False), rtol=1e-9,
    )
    assert shown(code, ns, "g.covariances().shape", "(3, 3, 3)") == (3, 3, 3)
    # "merges "bob", keeps every key": row 0 joins bob, row 1 starts dee
    assert '# merges "bob", keeps every key' in code
    assert both.keys().tolist() == ["ann", "bob", "cy", "dee"]
    np.testing.assert_allclose(
        both["bob"].covariance(), np.cov(np.vstack([X[users == "bob"], X[:1]]), rowvar=False), rtol=1e-9
    )
    assert both["dee"].n == 1 and np.array_equal(both["dee"].mean, X[1])
    assert both["ann"] == g["ann"]
    round_trip = shown(code, ns, "GroupedSummary.from_dict(json.loads(json.dumps(both.to_dict()))) == both", "True")
    assert round_trip is True
    assert isinstance(GroupedSummary.from_dict(both.to_dict()), GroupedSummary)


def test_inference(tmp_path, monkeypatch):
    """The inference block prints exactly the results its comments show."""
    code, ns = run_block(INFERENCE, tmp_path, monkeypatch)
    welch = shown(code, ns, "welch_t(a, b)", "")
    expected = "WelchResult(statistic=[1.63203, 1.13421], df=[526.6, 538.988], pvalue=[0.103271, 0.257211])"
    assert f"# {expected}" in code and repr(welch) == expected
    expected = "HotellingResult(t2=2.6706, f=1.33324, df=(2, 647), pvalue=0.264345)"
    assert f"hotelling_t2(a, b)   # {expected}" in code and repr(shown(code, ns, "hotelling_t2(a, b)", "")) == expected
    unequal = shown(code, ns, "hotelling_t2(a, b, equal_covariances=False)", "Krishnamoorthy-Yu: pvalue=0.265251")
    assert f"{unequal.pvalue:.6g}" == "0.265251"
    expected = "BoxMResult(m=0.495269, chi2=0.493488, df=3, pvalue=0.92032)"
    assert f"# {expected}" in code and repr(shown(code, ns, "box_m(a, b)", "")) == expected
    pooled = shown(code, ns, "pooled.covariance()", "[[0.9763, 0.5900], [0.5900, 0.7750]]")
    assert np.round(pooled, 4).tolist() == [[0.9763, 0.5900], [0.5900, 0.7750]]


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_dask(tmp_path, monkeypatch, capsys):
    """The Dask block runs on a LocalCluster and prints n and the covariance of np.cov on the rows."""
    code, ns = run_block(DASK, tmp_path, monkeypatch)
    import dask
    import dask.dataframe as dd
    import pandas as pd

    from gaussum import GroupedSummary

    s, x = ns["s"], ns["x"]
    printed = capsys.readouterr().out
    assert printed.startswith(f"{s.n} [[")
    with dask.config.set(scheduler="threads"):
        rows = x.compute()
        # "or summarize(x).compute() later"
        assert ns["summarize"](x).compute() == s
    assert s.n == 2_000_000 == rows.shape[0]
    reference = np.cov(rows, rowvar=False)
    np.testing.assert_allclose(s.covariance(), reference, rtol=0, atol=1e-9 * reference.diagonal().max())
    # math.fsum: the correctly rounded column sums (np.mean along axis 0 sums row by row)
    np.testing.assert_allclose(s.mean, [math.fsum(column) / rows.shape[0] for column in rows.T], rtol=4e-16)

    # The comment: summarize_by(ddf, "sensor", compute=True) -> GroupedSummary, one per key.
    assert '# g = summarize_by(ddf, "sensor", compute=True)  -> GroupedSummary, one summary per key' in code
    rng = np.random.default_rng(2)
    pdf = pd.DataFrame({"sensor": rng.choice(["p", "q"], 400), "v": rng.normal(1e6, 2.0, 400)})
    with dask.config.set(scheduler="synchronous"):
        g = ns["summarize_by"](dd.from_pandas(pdf, npartitions=3), "sensor", compute=True)
    assert isinstance(g, GroupedSummary) and g.keys().tolist() == ["p", "q"]
    np.testing.assert_allclose(g["q"].variance(), pdf.v[pdf.sensor == "q"].var(ddof=1), rtol=1e-9)


def test_weights(tmp_path, monkeypatch):
    """The weights block: np.cov with aweights, effective n below n, shards merging to the whole."""
    code, ns = run_block(WEIGHTS, tmp_path, monkeypatch)
    X, precision, s = ns["X"], ns["precision"], ns["s"]
    assert shown(code, ns, "np.allclose(s.covariance(), np.cov(X, rowvar=False, aweights=precision))", "True")
    assert shown(code, ns, "s.effective_n < s.n", "True")
    assert s.effective_n == pytest.approx(precision.sum() ** 2 / (precision**2).sum(), rel=1e-13)
    assert "# True: shards merge exactly" in code
    from gaussum import GaussianSummary

    shards = [GaussianSummary.from_samples(X[i:i + 50], aweights=precision[i:i + 50]) for i in range(0, 500, 50)]
    assert GaussianSummary.merge_all(shards).isclose(s, rtol=1e-12)
    np.testing.assert_allclose(s.covariance(), np.cov(X, rowvar=False, aweights=precision), rtol=1e-12)


def test_models(tmp_path, monkeypatch):
    """The models block's results are statsmodels', sklearn's and scipy's on the raw rows, as commented."""
    from scipy.spatial.distance import mahalanobis
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from statsmodels.regression.linear_model import OLS
    from statsmodels.tools.tools import add_constant

    code, ns = run_block(MODELS, tmp_path, monkeypatch)
    X, y = ns["X"], ns["y"]
    assert X.shape == (100_000, 3)
    # statsmodels on the centred rows: on the raw ones its own solver loses digits to the offset.
    reference = OLS(y - y.mean(), add_constant(X - X.mean(axis=0))).fit()
    coef = shown(code, ns, "fit.coef", "[1.49982, -2.0001, 0.500101], statsmodels' OLS on all rows")
    shown_coef = np.array2string(coef, separator=", ", formatter={"float_kind": lambda v: f"{v:.6g}"})
    assert shown_coef == "[1.49982, -2.0001, 0.500101]"
    np.testing.assert_allclose(coef, reference.params[1:], rtol=1e-9)
    bse, pvalues, rsquared = shown(code, ns, "fit.bse, fit.pvalues, fit.rsquared", "as statsmodels")
    np.testing.assert_allclose(bse[1:], reference.bse[1:], rtol=1e-9)
    np.testing.assert_allclose(pvalues[1:], reference.pvalues[1:], rtol=1e-6, atol=1e-300)
    assert rsquared == pytest.approx(reference.rsquared, rel=1e-9)
    assert shown(code, ns, "fit.predict([1e6, 1e6, 1e6])", "2.0 at the centre") == pytest.approx(2.0, abs=1e-3)
    ridge = shown(code, ns, "ols(s, y=3, X=[0, 1], ridge=10.0)", "sklearn's Ridge")
    np.testing.assert_allclose(ridge.coef, Ridge(alpha=10.0).fit(X[:, :2], y).coef_, rtol=1e-9)
    ratio = shown(code, ns, "pca(s, k=2).explained_variance_ratio", "sklearn's PCA")
    rows = np.column_stack([X, y])
    # svd_solver="full": sklearn's default for tall data, "covariance_eigh", forms X^T X - n mean
    # mean^T and at offset 1e6 errs by 1e-2 (measured), which the summary does not.
    sklearn_pca = PCA(n_components=2, svd_solver="full").fit(rows)
    np.testing.assert_allclose(ratio, sklearn_pca.explained_variance_ratio_, rtol=1e-9)
    distance = shown(code, ns, "mahalanobis(s, [1e6, 1e6, 1e6, 9.0])", "69.8")
    expected = mahalanobis([1e6, 1e6, 1e6, 9.0], rows.mean(axis=0), np.linalg.inv(np.cov(rows, rowvar=False)))
    assert round(distance, 1) == 69.8 and distance == pytest.approx(expected, rel=1e-8)
    mean = shown(code, ns, "conditional(s, given=[0, 1, 2], values=[1e6 + 1, 1e6, 1e6]).mean", "[3.5]")
    assert np.round(mean, 1).tolist() == [3.5]
