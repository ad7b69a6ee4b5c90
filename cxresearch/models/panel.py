"""Panel models on location x period: CX -> revenue within a location and EX -> CX, with two-way
fixed effects, a correction for survey noise in the CX measure, and wild cluster bootstrap intervals.
The CX measure is the brand's (NPS, CSAT top-2-box share or CES easy share, in points), so effects are
per +10 points of it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from cxresearch.measures.measure import get
from cxresearch.models.effect import Effect

__all__ = ["ex_effect", "revenue_effect", "two_way_demean", "wild_cluster_interval"]


def two_way_demean(frame: pd.DataFrame, columns: list[str], unit: str, time: str, tol: float = 1e-10,
                   max_iter: int = 500) -> pd.DataFrame:
    """Remove unit and time means from `columns` by alternating projections (exact for any panel).

    This absorbs location and period fixed effects without building thousands of dummy columns;
    on a balanced panel it converges in one sweep.
    """
    values = frame[columns].astype("float64")
    keys_u, keys_t = frame[unit], frame[time]
    for _ in range(max_iter):
        before = values
        values = values - values.groupby(keys_u, observed=True).transform("mean")
        values = values - values.groupby(keys_t, observed=True).transform("mean")
        if float((values - before).abs().to_numpy().max(initial=0)) < tol:
            break
    return values


def _fe_leverage(frame: pd.DataFrame, unit: str, time: str) -> np.ndarray:
    """Share of each observation's own noise that survives two-way demeaning (1 - leverage of the
    fixed effects): exactly 1 - 1/T_i - 1/N_t + 1/n on a balanced panel, a close approximation otherwise."""
    t_i = frame.groupby(unit, observed=True)[unit].transform("size").to_numpy(dtype=float)
    n_t = frame.groupby(time, observed=True)[time].transform("size").to_numpy(dtype=float)
    return np.clip(1 - 1 / t_i - 1 / n_t + 1 / len(frame), 0, 1)


def _errors_in_x_slope(y: np.ndarray, x: np.ndarray, noise: np.ndarray) -> tuple[float, float, float]:
    """OLS slope of demeaned y on demeaned x, corrected for known noise variance in x.

    Returns (corrected slope, naive slope, reliability = share of x's variance that is signal).
    """
    sxx, sxy = float(x @ x), float(x @ y)
    signal = sxx - float(noise.sum())
    return sxy / signal if signal > 0 else np.nan, sxy / sxx, signal / sxx


def _panel_sample(panel: pd.DataFrame, y: str, x: str, min_responses: int) -> pd.DataFrame:
    data = panel[panel[x].notna() & panel[y].notna()]
    if min_responses and x == "cx_lag":
        data = data[data["cx_n_lag"] >= min_responses]
    # keep locations seen in at least two periods: a single period carries no within-location variation
    seen = data.groupby("location_id")["period"].transform("size")
    return data[seen >= 2].reset_index(drop=True)


def revenue_effect(dataset_or_panel, period: str = "Q", outcome: str = "revenue", min_responses: int = 1,
                   n_boot: int = 2000, seed: int = 0, level: float = 0.95, measure=None) -> Effect:
    """% change in a location's period revenue per +10 points of its previous period's CX measure, within location.

    Log `outcome` (revenue or revenue_per_customer) per location x period on the previous period's
    measure (`measure`: NPS, CSAT or CES in points; default the brand's, see `location_panel`) with
    location and period fixed effects (two-way demeaning). A location-period's value is a
    survey estimate; its sampling noise would bias the slope toward zero, so the slope is corrected
    with the known noise variance (errors-in-variables, method of moments).

    The interval inverts a score test clustered by location (`_score_interval`): every slope b0 at
    which the locations' moment contributions still sum to zero within chance (t with locations - 1
    degrees of freedom). Unlike a percentile bootstrap of the corrected slope, a ratio whose
    denominator is itself noisy, it keeps its level when the signal is weak (simulated coverage in
    benchmarks/recovery.py) and it needs no resampling. `extra['log_slope_draws']` holds `n_boot`
    draws (seeded by `seed`) from the same test's confidence distribution, for what-if projections.
    `details` has the naive cross-location estimate (period effects only) beside it, to show how much
    location mix confounds the raw correlation, and the uncorrected within-location slope.
    """
    panel = dataset_or_panel if isinstance(dataset_or_panel, pd.DataFrame) else _panel(dataset_or_panel, period, measure)
    chosen = get(measure if measure is not None else panel.attrs.get("measure", "nps"))
    label = chosen.label
    data = _panel_sample(panel.assign(log_y=np.log(panel[outcome].where(panel[outcome] > 0))), "log_y", "cx_lag",
                         min_responses)
    if data["location_id"].nunique() < 3 or data["period"].nunique() < 2:
        raise ValueError(f"the revenue panel needs at least 3 locations observed in 2+ consecutive periods with "
                         f"{label}; have {data['location_id'].nunique()} locations, {data['period'].nunique()} periods")
    parts = _revenue_moments(data)
    estimate, naive_fe, reliability = parts["estimate"], parts["uncorrected"], parts["reliability"]
    if not np.isfinite(estimate):
        raise ValueError(f"{label} barely varies within locations beyond survey noise, so its link to revenue "
                         "cannot be estimated")
    low, high = _score_interval(parts, level)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"the link between {label} and revenue is too imprecise to bound: at {level:.0%} confidence the data "
                         f"are consistent with any effect (only {max(reliability, 0):.0%} of {label}'s variation within "
                         "locations is signal rather than survey noise)")
    draws = _confidence_draws(parts, n_boot, seed)
    naive = _naive_cross_section(data)
    pct = lambda b: 100 * (np.exp(b) - 1)  # noqa: E731  log points per 10 points of the measure -> percent
    details = pd.DataFrame([
        {"estimate": "within location, noise-corrected (headline)", "pct_per_10": pct(estimate)},
        {"estimate": "within location, uncorrected", "pct_per_10": pct(naive_fe)},
        {"estimate": "naive: across locations (period effects only)", "pct_per_10": pct(naive)},
    ])
    caveat = ("Observational: compares each location with itself over time, so stable differences between "
              "locations (region, format, size) cannot explain it, but things that change within a location "
              f"together with {label} could. ")
    if reliability < 0.3:
        caveat += (f"Only {max(reliability, 0):.0%} of the period-to-period {label} variation is signal rather than "
                   "survey noise, so the estimate is imprecise; more responses per location and period would sharpen it.")
    points = "NPS points" if chosen.name == "nps" else f"points of {chosen.short()}"
    return Effect(name=f"Revenue change per +10 {points} (next period, within location)", estimate=pct(estimate),
                  ci_low=pct(low), ci_high=pct(high), se=100 * parts["se"], unit="%",
                  n={"locations": int(data["location_id"].nunique()), "periods": int(data["period"].nunique()),
                     "location_periods": int(len(data))}, level=level,
                  method=("Log " + outcome.replace("_", " ") + f" on the previous period's {label} with location and "
                          f"period fixed effects; slope corrected for survey sampling noise in {label}; interval by "
                          "inverting a score test clustered by location."),
                  caveats=caveat, details=details,
                  extra={"reliability": reliability, "log_slope": estimate, "log_slope_draws": draws,
                         "log_slope_interval": (low, high), "measure": chosen.name})


def _revenue_moments(data: pd.DataFrame) -> dict:
    """Per-location pieces of the noise-corrected slope's moment condition.

    With x and y demeaned by location and period (x per 10 points of the measure), the slope b solves
    sum_g (a_g - b r_g) = 0, where a_g = sum x y and r_g = sum (x^2 - noise) over location g's periods
    (noise: each cell's sampling variance times its fixed-effects leverage, so E[r_g] is the signal).
    """
    demeaned = two_way_demean(data, ["log_y", "cx_lag"], "location_id", "period")
    y, x = demeaned["log_y"].to_numpy(), demeaned["cx_lag"].to_numpy() / 10
    noise = (data["cx_var_lag"].to_numpy() / 100) * _fe_leverage(data, "location_id", "period")
    codes = pd.factorize(data["location_id"])[0]
    a, r = np.bincount(codes, weights=x * y), np.bincount(codes, weights=x * x - noise)
    estimate, uncorrected, reliability = _errors_in_x_slope(y, x, noise)
    clusters = len(a)
    inflate = clusters / (clusters - 1)  # CR1's small-sample factor
    se = np.sqrt(inflate * float(((a - estimate * r) ** 2).sum())) / r.sum() if np.isfinite(estimate) else np.nan
    return {"a": a, "r": r, "estimate": estimate, "uncorrected": uncorrected, "reliability": reliability,
            "clusters": clusters, "inflate": inflate, "se": se}


def _score_quadratic(parts: dict, z2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients of (A - b B)^2 - z^2 k sum_g (a_g - b r_g)^2 as a quadratic in b (k: CR1 factor)."""
    a, r, k = parts["a"], parts["r"], parts["inflate"]
    big_a, big_b = a.sum(), r.sum()
    q2, q1, q0 = float(a @ a), float(a @ r), float(r @ r)
    return (big_b ** 2 - z2 * k * q0, -2 * (big_a * big_b - z2 * k * q1), big_a ** 2 - z2 * k * q2)


def _score_interval(parts: dict, level: float) -> tuple[float, float]:
    """Every slope b0 whose clustered score statistic |sum_g s_g| / sqrt(k sum_g s_g^2), with
    s_g = a_g - b0 r_g, stays below the t quantile with G - 1 degrees of freedom.

    The statistic is a ratio of a linear and the root of a quadratic function of b0, so the set is
    solved exactly from a quadratic. It is a bounded interval only when the signal term r is itself
    clearly nonzero; otherwise (nan, nan): the data cannot bound the slope at this level.
    """
    t = stats.t.ppf(0.5 + level / 2, parts["clusters"] - 1)
    alpha, beta, gamma = _score_quadratic(parts, np.array(t * t))
    disc = beta ** 2 - 4 * alpha * gamma
    if not (alpha > 0 and disc > 0):
        return np.nan, np.nan
    root = np.sqrt(disc)
    return float((-beta - root) / (2 * alpha)), float((-beta + root) / (2 * alpha))


def _confidence_draws(parts: dict, n_draws: int, seed: int) -> np.ndarray:
    """Draws of the slope from the score test's confidence distribution: for z ~ t(G - 1), the b0
    whose statistic equals z, so their quantiles reproduce `_score_interval` at every level.
    z beyond what any b0 reaches (the tails past a bounded interval) is clipped to the reachable range."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(parts["clusters"] - 1, n_draws)
    r, k = parts["r"], parts["inflate"]
    reach = abs(r.sum()) / np.sqrt(k * float(r @ r))  # |statistic| as b0 -> +-infinity
    z = np.clip(z, -0.999 * reach, 0.999 * reach)
    alpha, beta, gamma = _score_quadratic(parts, z * z)
    root = np.sqrt(np.maximum(beta ** 2 - 4 * alpha * gamma, 0))
    # a positive statistic means sum_g s_g > 0, i.e. b0 below the estimate: the smaller root
    return np.where(z > 0, (-beta - root) / (2 * alpha), (-beta + root) / (2 * alpha))


def _panel(dataset, period, measure=None):
    from cxresearch.measures.revenue import location_panel

    return location_panel(dataset, period, measure)


def _naive_cross_section(data: pd.DataFrame) -> float:
    """Slope of log outcome on the measure/10 across locations, removing only period means (the raw correlation)."""
    y = data["log_y"] - data.groupby("period")["log_y"].transform("mean")
    x = (data["cx_lag"] - data.groupby("period")["cx_lag"].transform("mean")) / 10
    return float((x * y).sum() / (x * x).sum())


def ex_effect(dataset_or_panel, period: str = "Q", level: float = 0.95, n_boot: int = 9999, seed: int = 0,
              measure=None) -> Effect:
    """Points of the CX measure per +10 points of employee experience, within location (service-profit chain, step 1).

    The measure (`measure`, default the brand's: see `location_panel`) per location x period on EX
    in the same period with location and period fixed effects, weighted by the number of responses
    (WLS; the location effects are absorbed by weighted demeaning, the period effects are dummies).
    Survey noise in the measure (the outcome) adds imprecision but no bias.
    The interval inverts a wild cluster bootstrap test (restricted, WCR: Cameron, Gelbach and Miller
    2008; MacKinnon and Webb 2017) with Webb's six-point weights, `n_boot` draws seeded by `seed`.
    Clustered by location, it allows any correlation over a location's periods (EX is persistent) and
    unequal noise (cells of different sizes). With a hundred or more locations it agrees closely with
    the t interval on the clustered standard error; with few or unequally sized locations that t
    interval is too narrow and the bootstrap holds its level better (simulated: 8 locations, 93.0% vs
    95.0% coverage). `se` is the clustered (CR1) standard error; `extra['t_interval']` the t interval.
    """
    panel = dataset_or_panel if isinstance(dataset_or_panel, pd.DataFrame) else _panel(dataset_or_panel, period, measure)
    chosen = get(measure if measure is not None else panel.attrs.get("measure", "nps"))
    label = chosen.label
    if not panel["ex"].notna().any():
        raise ValueError("the data have no employee-experience measurements (the employee_experience table is "
                         "empty or absent)")
    data = panel[panel["ex"].notna() & panel["cx"].notna() & (panel["cx_n"] > 0)]
    seen = data.groupby("location_id")["period"].transform("size")
    data = data[seen >= 2].reset_index(drop=True)
    if data["location_id"].nunique() < 3:
        raise ValueError(f"the EX -> {label} panel needs at least 3 locations with EX and {label} in 2+ periods")
    panel_fit = _fe_panel_wls(data["cx"].to_numpy(dtype=float), data["ex"].to_numpy(dtype=float) / 10,
                              data["location_id"], data["period"], data["cx_n"].to_numpy(dtype=float))
    b, se, clusters = panel_fit["estimate"], panel_fit["se"], panel_fit["clusters"]
    if not (np.isfinite(se) and se > 0):
        raise ValueError(f"EX does not vary within locations over periods: the EX -> {label} slope is not identified")
    low, high = wild_cluster_interval(panel_fit, level=level, n_boot=n_boot, seed=seed)
    t = stats.t.ppf(0.5 + level / 2, clusters - 1)
    names = ["ex_per_10"] + [f"period[{p}]" for p in panel_fit["periods"]]
    fit = sm.WLS(pd.Series(panel_fit["y"], name=f"{chosen.name} (within location)"), pd.DataFrame(panel_fit["X"], columns=names),
                 weights=panel_fit["w"]).fit(
        cov_type="cluster", cov_kwds={"groups": panel_fit["codes"]}, use_t=True)
    caveat = "Observational: EX and CX may both follow a third change at the location (a new manager, a refit)."
    if clusters < 12:
        caveat += f" With only {clusters} locations the interval is wide and itself approximate."
    return Effect(name=f"{label} change per +10 points of employee experience (within location)", estimate=b,
                  ci_low=low, ci_high=high, se=se, unit=chosen.unit,
                  n={"locations": int(clusters), "periods": int(data["period"].nunique()),
                     "location_periods": int(len(data))}, level=level,
                  method=(f"{label} on EX with location and period fixed effects, weighted by responses; "
                          f"{level:.0%} interval by inverting a wild cluster bootstrap test (restricted, Webb "
                          f"weights, {n_boot:,} draws) clustered by location; SE clustered by location (CR1)."),
                  caveats=caveat, model=fit,
                  extra={"t_interval": (b - t * se, b + t * se), "n_boot": n_boot, "seed": seed,
                         "bootstrap": "WCR, Webb six-point weights, symmetric test inverted"})


def _fe_panel_wls(y: np.ndarray, x: np.ndarray, unit, time, w: np.ndarray) -> dict:
    """Weighted least squares of y on x with unit and time fixed effects, units nested in the clusters.

    Unit effects are absorbed by weighted demeaning within unit (exact in one pass); time effects are
    dummies (few columns), also demeaned. Returns what the clustered variance and the wild cluster
    bootstrap need: the demeaned y and design X (x first), weights, cluster codes, the estimate, its CR1
    standard error, x and y residualized on everything else (x_res, y_res) and the residuals.
    """
    codes = pd.factorize(pd.Series(unit).to_numpy())[0]
    periods, time_codes = np.unique(pd.Series(time).astype("str").to_numpy(), return_inverse=True)
    dummies = (time_codes[:, None] == np.arange(1, len(periods))[None, :]).astype("float64")
    raw = np.column_stack([y, x, dummies])
    total = np.bincount(codes, weights=w)
    means = np.column_stack([np.bincount(codes, weights=w * col) for col in raw.T]) / total[:, None]
    demeaned = raw - means[codes]
    y_dm, X = demeaned[:, 0], demeaned[:, 1:]
    keep = np.r_[True, np.abs(X[:, 1:]).max(axis=0, initial=0) > 1e-12]  # a period seen in one location only
    X, periods = X[:, keep], periods[1:][keep[1:]]
    root = np.sqrt(w)
    others = X[:, 1:]
    if others.shape[1]:
        coef = lambda v: np.linalg.lstsq(others * root[:, None], v * root, rcond=None)[0]  # noqa: E731
        x_res, y_res = X[:, 0] - others @ coef(X[:, 0]), y_dm - others @ coef(y_dm)
    else:
        x_res, y_res = X[:, 0].copy(), y_dm.copy()
    sxx = float(x_res @ (w * x_res))
    estimate = float(x_res @ (w * y_res)) / sxx if sxx > 0 else np.nan
    resid = y_res - estimate * x_res
    clusters = int(codes.max()) + 1
    score = np.bincount(codes, weights=w * x_res * resid, minlength=clusters)
    n, k = len(y), X.shape[1]
    factor = clusters / (clusters - 1) * (n - 1) / (n - k)  # CR1, as statsmodels and Stata
    se = float(np.sqrt(factor * (score @ score))) / sxx if sxx > 0 else np.nan
    return {"y": y_dm, "X": X, "w": w, "codes": codes, "clusters": clusters, "periods": list(periods),
            "x_res": x_res, "y_res": y_res, "sxx": sxx, "estimate": estimate, "se": se, "resid": resid}


WEBB_WEIGHTS = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


def _wild_cluster_parts(fit: dict, draws: np.ndarray) -> dict:
    """For cluster weights `draws` (B x G): the pieces of each restricted wild bootstrap t statistic as
    functions of the hypothesised slope b0 (Roodman, MacKinnon, Nielsen and Webb 2019, 'Fast and wild').

    Under H0: slope = b0 the restricted residuals are u0 = y_res - b0 x_res. The bootstrap sample is the
    restricted fit plus v_g u0 in cluster g; refitting it on the full design gives slope* - b0 =
    num / sxx and the per-cluster scores of its clustered variance, both linear in b0, so (the CR1
    factor cancelling) t*(b0) = (num1 - b0 num0) / sqrt(q2 - 2 b0 q1 + b0^2 q0) exactly, without refitting.
    """
    X, w, codes, G = fit["X"], fit["w"], fit["codes"], fit["clusters"]
    x_res, y_res = fit["x_res"], fit["y_res"]
    by = lambda v: np.bincount(codes, weights=v, minlength=G)  # noqa: E731
    a_y, a_x = by(w * x_res * y_res), by(w * x_res * x_res)
    s_y = np.column_stack([by(w * col * y_res) for col in X.T])  # G x k: X_g' W_g y_res_g
    s_x = np.column_stack([by(w * col * x_res) for col in X.T])
    f = np.column_stack([by(w * x_res * col) for col in X.T])  # G x k: x_res_g' W_g X_g
    qf = np.linalg.pinv(X.T @ (w[:, None] * X)) @ f.T  # k x G
    out = {"num1": draws @ a_y, "num0": draws @ a_x}
    p = draws * a_y - (draws @ s_y) @ qf  # score_g = p - b0 r
    r = draws * a_x - (draws @ s_x) @ qf
    out.update(q2=np.einsum("ij,ij->i", p, p), q1=np.einsum("ij,ij->i", p, r), q0=np.einsum("ij,ij->i", r, r))
    return out


def wild_cluster_interval(fit: dict, level: float = 0.95, n_boot: int = 9999, seed: int = 0,
                          chunk: int = 1000) -> tuple[float, float]:
    """Interval for the slope of `_fe_panel_wls` by inverting the restricted wild cluster bootstrap t test.

    The interval is every b0 whose symmetric bootstrap p-value, the share of |t*(b0)| at least |t(b0)|,
    exceeds 1 - level. Cluster weights are Webb's six-point distribution (mean 0, variance 1), drawn
    from `seed`. Each endpoint is found by bisection on the exact p-value function.
    """
    rng = np.random.default_rng(seed)
    sizes = [min(chunk, n_boot - start) for start in range(0, n_boot, chunk)]  # chunks bound the memory at B x G
    parts = [_wild_cluster_parts(fit, WEBB_WEIGHTS[rng.integers(0, 6, size=(size, fit["clusters"]))]) for size in sizes]
    p = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    b, sxx = fit["estimate"], fit["sxx"]
    score = np.bincount(fit["codes"], weights=fit["w"] * fit["x_res"] * fit["resid"], minlength=fit["clusters"])
    root_s2 = float(np.sqrt(score @ score))
    alpha = 1 - level

    def p_value(b0: float) -> float:
        t = sxx * (b - b0) / root_s2
        spread = np.sqrt(np.maximum(p["q2"] - 2 * b0 * p["q1"] + b0 * b0 * p["q0"], 1e-300))
        return float(np.mean(np.abs((p["num1"] - b0 * p["num0"]) / spread) >= abs(t)))

    def endpoint(direction: float) -> float:
        step = root_s2 / sxx  # the CR0 standard error
        inside, outside = b, b + 2 * direction * step
        while p_value(outside) > alpha:
            inside, outside = outside, b + 2 * (outside - b)
            if abs(outside - b) > 1e6 * step:
                return direction * np.inf
        for _ in range(100):
            middle = (inside + outside) / 2
            inside, outside = (middle, outside) if p_value(middle) > alpha else (inside, middle)
            if abs(outside - inside) < 1e-9 * step:
                break
        return (inside + outside) / 2

    return endpoint(-1.0), endpoint(1.0)
