"""Key drivers: which attribute ratings (and channels) matter most for the CX score, by Johnson's
relative weights with location-cluster bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxresearch.measures.importance import relative_weights_from_cov
from cxresearch.schema import ATTRIBUTE_PREFIX

__all__ = ["drivers"]


def _weighted_cov(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    mean = (w @ x) / w.sum()
    centred = x - mean
    return (centred * w[:, None]).T @ centred / w.sum()


def drivers(responses: pd.DataFrame, target: str = "nps", attributes=None, categorical=(), cluster: str | None = "location_id",
            n_boot: int = 200, seed: int = 0, level: float = 0.95, min_n: int = 100) -> pd.DataFrame:
    """Relative importance of attribute ratings (and channels) for `target`, with bootstrap intervals.

    `attributes` default to every attr_* column. `categorical` columns (e.g. 'channel') enter as
    dummies and get one weight, the sum of theirs. Importance is each driver's share of the
    explained variance (Johnson's relative weights, which agree closely with the Shapley/LMG
    decomposition of R^2); intervals are percentile intervals from a bootstrap that resamples
    whole locations (`cluster`), so within-location correlation is respected. Rows missing the
    target or any driver are left out (reported in `.attrs['rows_used']`).
    """
    attributes = list(attributes) if attributes is not None else sorted(c for c in responses if c.startswith(ATTRIBUTE_PREFIX))
    if not attributes and not categorical:
        raise ValueError("no drivers: give attributes (e.g. attr_staff) or categorical columns")
    cols = [target] + attributes + list(categorical) + ([cluster] if cluster else [])
    data = responses[cols].dropna()
    if len(data) < min_n:
        raise ValueError(f"key drivers need at least {min_n} complete responses; found {len(data)}")
    x, names, owners = _driver_matrix(data, target, attributes, categorical)
    raw, r2 = relative_weights_from_cov(_weighted_cov(x, np.ones(len(x))))
    boot = _bootstrap_weights(x, data[cluster] if cluster else None, n_boot, seed)
    share, boot_share = _by_owner(raw / r2, owners), _by_owner((boot.T / boot.sum(axis=1)).T if len(boot) else boot, owners)
    alpha = 1 - level
    out = pd.DataFrame({"driver": list(share.index), "importance": share.to_numpy(),
                        "ci_low": np.quantile(boot_share, alpha / 2, axis=0) if len(boot) else np.nan,
                        "ci_high": np.quantile(boot_share, 1 - alpha / 2, axis=0) if len(boot) else np.nan,
                        "raw_weight": _by_owner(raw, owners).to_numpy()})
    out = out.sort_values("importance", ascending=False).reset_index(drop=True)
    out.attrs.update({"r2": r2, "rows_used": len(data), "rows_dropped": len(responses) - len(data), "target": target,
                      "method": "Johnson's relative weights; location-cluster bootstrap percentile intervals"})
    return out


def _driver_matrix(data, target, attributes, categorical):
    parts, owners = [data[attributes].astype("float64")], list(attributes)
    for col in categorical:
        dummies = pd.get_dummies(data[col].astype("str"), prefix=col, drop_first=True, dtype="float64")
        parts.append(dummies)
        owners += [col] * dummies.shape[1]
    frame = pd.concat(parts, axis=1)
    keep = frame.std().to_numpy() > 0
    frame, owners = frame.loc[:, keep], [o for o, k in zip(owners, keep) if k]
    x = np.column_stack([frame.to_numpy(), data[target].astype("float64").to_numpy()])
    return x, list(frame.columns), owners


def _bootstrap_weights(x: np.ndarray, clusters, n_boot: int, seed: int) -> np.ndarray:
    """Raw relative weights for `n_boot` resamples (whole clusters when given, else rows)."""
    if n_boot <= 0:
        return np.empty((0, x.shape[1] - 1))
    rng = np.random.default_rng(seed)
    codes = pd.factorize(clusters)[0] if clusters is not None else np.arange(len(x))
    k = codes.max() + 1
    out = np.empty((n_boot, x.shape[1] - 1))
    for b in range(n_boot):  # each replicate is one weighted covariance of the whole matrix
        w = rng.multinomial(k, np.full(k, 1 / k))[codes].astype("float64")
        out[b] = relative_weights_from_cov(_weighted_cov(x, w))[0]
    return out


def _by_owner(values: np.ndarray, owners: list[str]):
    """Sum weights of dummies that belong to one categorical driver."""
    frame = pd.DataFrame(np.atleast_2d(values), columns=owners)
    summed = frame.T.groupby(level=0, sort=False).sum().T
    return summed.iloc[0] if np.ndim(values) == 1 else summed.to_numpy()
