"""The scripts in examples/ run, exit 0 and print the checks they make against numpy.

Each script checks its own answer against the raw rows (np.mean, np.var, np.cov, explicit
weights) and exits 1 if a check fails; these tests also read the printed verdicts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "False" not in result.stdout, result.stdout
    return result.stdout


def test_merge_two_groups_pools_to_the_concatenated_data():
    """merge_two_groups.py pools (n, mean, variances) into the statistics of all rows."""
    out = run_example("merge_two_groups.py")
    assert "pooled: n = 200" in out
    assert "pooled variance equals np.var(ddof=1) of all rows: True" in out
    assert "(n - 1) pooled var = (n - 2) weighted avg + n_a n_b / n * delta**2: True" in out


def test_map_reduce_merges_shards_from_a_process_pool():
    """map_reduce.py summarises 16 shards in 2 processes and merges them into np.cov of all rows."""
    out = run_example("map_reduce.py", "2")
    assert "16 shards, 2 workers" in out
    assert "merged covariance equals np.cov of all rows: True" in out
    assert "merge_all equals pairwise + in reverse order: True" in out


def test_streaming_updates_and_forgets():
    """streaming.py folds batches exactly and its forgetting matches explicit lam**age weights."""
    out = run_example("streaming.py")
    assert "equals the summary of all rows: True" in out
    assert "forgetting equals explicit weights lam**age on the raw rows: True" in out


def test_distributed_regression_equals_statsmodels():
    """distributed_regression.py fits from shard summaries on a LocalCluster what statsmodels fits on all rows."""
    out = run_example("distributed_regression.py")
    assert "summary of 120,000 rows in 12 partitions" in out
    assert "slopes equal statsmodels on the concatenated rows (1e-9 relative): True" in out
    assert "standard errors and R² equal statsmodels': True" in out
    assert "y on x0 alone, refitted from the same summary, equals statsmodels: True" in out
    assert "per-region fits equal statsmodels on each region's rows: True" in out


def test_streaming_anomalies_flags_faults_against_a_forgetting_summary():
    """streaming_anomalies.py flags the injected faults and its distances equal scipy's with lam**age weights."""
    out = run_example("streaming_anomalies.py")
    assert "forgetting catches the faults with few false alarms, the plain summary misses many: True" in out
    assert "distances equal scipy's with explicit weights lam**age on the raw rows: True" in out
