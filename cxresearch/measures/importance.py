"""Relative importance: Johnson's (2000) relative weights, the share of explained variance each
predictor accounts for. The key-driver model uses it, and so does the synthetic brand to state its truth."""

from __future__ import annotations

import numpy as np

__all__ = ["relative_weights", "relative_weights_from_cov"]


def relative_weights_from_cov(cov: np.ndarray) -> tuple[np.ndarray, float]:
    """Johnson's (2000) relative weights from the covariance of [predictors..., target].

    Returns the raw weights (they sum to R^2) and R^2. The predictors are replaced by their closest
    orthogonal counterparts Z = R^(1/2); the target is regressed on Z, and each predictor's weight
    is the variance it shares with Z times Z's share of the target. A predictor without variance
    (a category absent from a bootstrap resample) gets weight 0; a target without variance, all 0.
    """
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    flat = sd <= 1e-12
    if flat[-1]:
        return np.zeros(len(sd) - 1), 0.0
    safe = np.where(flat, 1.0, sd)
    corr = cov / np.outer(safe, safe)
    corr[flat, :], corr[:, flat] = 0.0, 0.0
    corr[flat, flat] = 1.0
    rxx, rxy = corr[:-1, :-1], corr[:-1, -1]
    values, vectors = np.linalg.eigh(rxx)
    values = np.clip(values, 1e-12, None)
    lam = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    beta = np.linalg.solve(lam, rxy)
    raw = (lam**2) @ (beta**2)
    return raw, float(raw.sum())



def relative_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Johnson's relative weights of the columns of `x` for `y`, as shares summing to 1."""
    raw, r2 = relative_weights_from_cov(np.cov(np.column_stack([x, y]), rowvar=False))
    return raw / r2
