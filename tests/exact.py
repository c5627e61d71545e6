"""Exact reference statistics with fractions.Fraction (and math.fsum for large data): no shared
code with gaussum."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def exact_moments(X: np.ndarray, weights: np.ndarray | None = None):
    """Exact (n, mean, M2) of the float64 values in X (N, d), as Fractions.

    Returns n as a Fraction, mean as a list of d Fractions, M2 as a d x d list of lists.
    """
    rows = [[Fraction(float(v)) for v in row] for row in np.asarray(X, dtype=np.float64)]
    w = [Fraction(1)] * len(rows) if weights is None else [Fraction(float(v)) for v in weights]
    n = sum(w, Fraction(0))
    d = len(rows[0])
    mean = [sum((wi * r[j] for wi, r in zip(w, rows, strict=True)), Fraction(0)) / n for j in range(d)]
    dev = [[r[j] - mean[j] for j in range(d)] for r in rows]
    M2 = [[Fraction(0)] * d for _ in range(d)]
    for j in range(d):
        for k in range(j, d):
            value = sum((wi * e[j] * e[k] for wi, e in zip(w, dev, strict=True)), Fraction(0))
            M2[j][k] = M2[k][j] = value
    return n, mean, M2


def rounded(values) -> np.ndarray:
    """Fractions (nested lists) correctly rounded to float64."""
    return np.array(values, dtype=object).astype(np.float64)


def ulps(computed: float, exact: Fraction) -> float:
    """|computed - exact| in units in the last place of the correctly rounded exact value."""
    spacing = np.spacing(abs(float(exact))) if exact != 0 else np.finfo(np.float64).smallest_subnormal
    return float(abs(Fraction(float(computed)) - exact) / Fraction(float(spacing)))


def relative_frobenius(computed: np.ndarray, exact) -> float:
    """||computed - exact||_F / ||exact||_F, with the difference taken exactly."""
    diff = sum(
        (Fraction(float(c)) - e) ** 2
        for c, e in zip(np.ravel(computed), np.ravel(np.array(exact, dtype=object)), strict=True)
    )
    norm = sum(e**2 for e in np.ravel(np.array(exact, dtype=object)))
    return float(diff / norm) ** 0.5 if norm else float(diff) ** 0.5


def exact_mean(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the exact mean of the float64 values as a double-float ``hi + lo`` (to u**2).

    ``math.fsum`` is correctly rounded; the fsum of the values less that sum is what it left.
    """
    N, d = X.shape
    hi, lo = np.empty(d), np.empty(d)
    for j in range(d):
        column = X[:, j].tolist()
        total = math.fsum(column)
        rest = math.fsum([*column, -total])
        mean = (Fraction(total) + Fraction(rest)) / N
        hi[j] = float(mean)
        lo[j] = float(mean - Fraction(hi[j]))
    return hi, lo


def reference_covariance(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The covariance of X (ddof=1) about its exact mean, and that mean as ``hi, lo``.

    ``X - hi`` is exact for data near its mean (Sterbenz); taking ``lo`` off rounds each value to
    ``u`` of itself, and numpy's pairwise sums of the products round by ``u log N``: far below
    the errors measured here.
    """
    hi, lo = exact_mean(X)
    Yt = np.ascontiguousarray(((X - hi) - lo).T)
    C = np.empty((X.shape[1], X.shape[1]))
    for i in range(X.shape[1]):
        C[i] = np.sum(Yt[i] * Yt, axis=1)
    return C / (X.shape[0] - 1), hi, lo


def relative_error(C: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(C - reference) / np.linalg.norm(reference))
