"""The brand's CX measure: NPS, CSAT (or a star rating) or CES, and what follows from the choice.

A brand tracks one headline CX score. Many real brands have no NPS at all, only star ratings or
CSAT, so every comparison, trend, gap and effect in the package takes a `Measure` instead of
assuming NPS. Each measure's headline value is in points on a fixed range, so "per +10 points" means
the same kind of thing for all three:

- **NPS** (0-10): share of promoters (9-10) minus share of detractors (0-6), -100 to +100;
- **CSAT** (1-5, star ratings too): the share of satisfied answers, 4-5 of 5 (top-2-box), 0 to 100;
- **CES** (1-7, higher is easier): the share of easy answers, 5-7 of 7, 0 to 100.

Each measure also splits customers into three groups, bottom / middle / top (detractors, passives,
promoters for NPS; 1-2, 3, 4-5 stars for CSAT; 1-3, 4, 5-7 for CES): the retention gap compares the
top group with the bottom one. `choose` picks the brand's measure: the one named, or by default NPS
where the data have it, else CSAT, else CES.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxresearch.schema import METRICS, PASSIVE_MIN, PROMOTER_MIN, SCALES

__all__ = ["MEASURES", "Measure", "choose", "get"]


@dataclass(frozen=True)
class Measure:
    """One CX measure: its score column and scale, its headline value in points, and its three groups."""

    name: str  # the responses column: nps, csat or ces
    label: str  # short name in reports: NPS, CSAT, CES
    title: str  # what it measures, in words
    value_text: str  # what the headline value is, in words
    top_min: int  # answers from here up are the top group (promoters, satisfied, easy)
    bottom_max: int  # answers up to here are the bottom group (detractors, dissatisfied, hard)
    bounds: tuple[float, float]  # the range of the headline value, in points
    groups: tuple[str, str, str]  # names of the bottom, middle and top group

    @property
    def scale(self) -> tuple[int, int]:
        """The range of one answer (0-10, 1-5, 1-7)."""
        return SCALES[self.name]

    @property
    def unit(self) -> str:
        """The unit of the headline value and of its changes."""
        return "NPS points" if self.name == "nps" else "points"

    @property
    def shift_per_point(self) -> float:
        """Share of customers who move from the bottom to the top group when the value rises by one point:
        1/200 for NPS (one such move adds 200 points per customer), 1/100 for a top-box share."""
        return 1 / 200 if self.name == "nps" else 1 / 100

    def answered(self, counts: pd.DataFrame) -> pd.Series:
        """Answers per row of `metrics.score_counts` output."""
        if self.name == "nps":
            return counts["nps_promoters"] + counts["nps_passives"] + counts["nps_detractors"]
        return counts[f"{self.name}_n"]

    def _top_and_n(self, counts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Top-box answers and all answers per row, for the share measures (CSAT, CES)."""
        top = counts["csat_top"] if self.name == "csat" else counts["ces_easy"]
        return np.asarray(top, float), np.asarray(self.answered(counts), float)

    def estimates(self, counts: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
        """Headline value per row of `metrics.score_counts` output: value, se (plain), se_adjusted (from
        pseudo-counts, never zero, for weighting small groups), ci_low, ci_high (within the bounds), n."""
        if self.name == "nps":
            from cxresearch.measures.intervals import nps_from_counts  # (scipy: only when estimating)

            est = nps_from_counts(counts["nps_promoters"], counts["nps_passives"], counts["nps_detractors"], level)
            return pd.DataFrame({"value": est["nps"], "se": est["se"], "se_adjusted": est["se_adjusted"],
                                 "ci_low": est["ci_low"], "ci_high": est["ci_high"], "n": est["n"]})
        top, n = self._top_and_n(counts)
        from cxresearch.measures.intervals import proportion_from_counts

        est = proportion_from_counts(top, n, level)
        p_adj = (top + 1) / (n + 2)  # never 0 or 1, so se > 0
        return pd.DataFrame({"value": 100 * est["share"], "se": 100 * est["se"],
                             "se_adjusted": 100 * np.sqrt(p_adj * (1 - p_adj) / (n + 2)),
                             "ci_low": 100 * est["ci_low"], "ci_high": 100 * est["ci_high"], "n": est["n"]})

    def squared_deviations(self, counts: pd.DataFrame) -> np.ndarray:
        """Per row of `score_counts`: the sum of squared deviations of the answers' contributions (see
        `contributions`) from the row's value, n x the per-answer variance. Summed over rows and divided
        by the sum of (n - 1), it is the unbiased pooled variance of one answer within a group."""
        if self.name == "nps":
            p, a, d = (np.asarray(counts[c], float) for c in ("nps_promoters", "nps_passives", "nps_detractors"))
            n = p + a + d
            with np.errstate(divide="ignore", invalid="ignore"):
                out = n * 100**2 * ((p + d) / n - ((p - d) / n) ** 2)
        else:
            top, n = self._top_and_n(counts)
            with np.errstate(divide="ignore", invalid="ignore"):
                out = n * 100**2 * (top / n) * (1 - top / n)
        return np.where(n > 0, out, 0.0)

    def contribution_sums(self, counts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row of `score_counts`: the answers, and the sum and the sum of squares of their
        contributions (see `contributions`), from which any union of rows has its value and variance."""
        n = np.asarray(self.answered(counts), float)
        if self.name == "nps":
            promoters, detractors = (np.asarray(counts[c], float) for c in ("nps_promoters", "nps_detractors"))
            return n, 100 * (promoters - detractors), 100**2 * (promoters + detractors)
        top = self._top_and_n(counts)[0]
        return n, 100 * top, 100**2 * top

    def short(self) -> str:
        """The measure and its unit in a few words: 'NPS', 'CSAT (% satisfied, 4-5 of 5)'."""
        return {"nps": "NPS", "csat": "CSAT (% satisfied, 4-5 of 5)", "ces": "CES (% easy, 5-7 of 7)"}[self.name]

    def contributions(self, scores: pd.Series) -> pd.Series:
        """Each answer's part in the headline value (its mean is the value): +100 / 0 / -100 for promoters,
        passives and detractors; 100 or 0 for a top-box share. Missing answers stay missing."""
        values = pd.to_numeric(scores, errors="coerce").astype("float64")
        if self.name == "nps":
            out = np.select([values >= self.top_min, values <= self.bottom_max], [100.0, -100.0], 0.0)
        else:
            out = np.where(values >= self.top_min, 100.0, 0.0)
        return pd.Series(out, index=scores.index).where(values.notna())

    def group(self, scores: pd.Series) -> pd.Series:
        """The bottom / middle / top group of each answer, as an ordered categorical (missing stays missing)."""
        values = pd.to_numeric(scores, errors="coerce").astype("float64")
        labels = np.select([values >= self.top_min, values > self.bottom_max, values.notna()],
                           [self.groups[2], self.groups[1], self.groups[0]], "")
        out = pd.Series(labels, index=scores.index).replace("", np.nan)
        return out.astype(pd.CategoricalDtype(list(self.groups), ordered=True))

    def people(self, group: int) -> str:
        """Customers of group 0 (bottom), 1 (middle) or 2 (top) in words: 'detractors', 'satisfied customers'."""
        name = self.groups[group]
        return f"{name}s" if self.name == "nps" else f"{name} customers"

    def answers(self, group: int) -> str:
        """The answers that make up group 0 (bottom), 1 (middle) or 2 (top), e.g. '4-5'."""
        low, high = self.scale
        spans = ((low, self.bottom_max), (self.bottom_max + 1, self.top_min - 1), (self.top_min, high))
        a, b = spans[group]
        return f"{a}" if a == b else f"{a}-{b}"

    def format(self, value: float, digits: int = 0) -> str:
        """The headline value as leadership reads it: '+31' for NPS, '86%' for a share; '—' when missing."""
        if value is None or not np.isfinite(value):
            return "—"
        return f"{value:+.{digits}f}" if self.name == "nps" else f"{value:.{digits}f}%"

    def format_change(self, value: float, digits: int = 0) -> str:
        """A change of the headline value: '+3 points' ('—' when missing)."""
        if value is None or not np.isfinite(value):
            return "—"
        return f"{value:+.{digits}f} points"


MEASURES = {
    "nps": Measure("nps", "NPS", "likelihood to recommend (Net Promoter Score)",
                   "Net Promoter Score: % promoters (9-10) minus % detractors (0-6)",
                   top_min=PROMOTER_MIN, bottom_max=PASSIVE_MIN - 1, bounds=(-100.0, 100.0),
                   groups=("detractor", "passive", "promoter")),
    "csat": Measure("csat", "CSAT", "customer satisfaction (CSAT, or a 1-5 star rating)",
                    "share of satisfied customers (4-5 of 5)", top_min=4, bottom_max=2, bounds=(0.0, 100.0),
                    groups=("dissatisfied", "neutral", "satisfied")),
    "ces": Measure("ces", "CES", "customer effort (CES, 1-7, higher is easier)",
                   "share of customers who found it easy (5-7 of 7)", top_min=5, bottom_max=3, bounds=(0.0, 100.0),
                   groups=("hard", "neutral", "easy")),
}


def get(measure) -> Measure:
    """The Measure for a name ('nps', 'csat', 'ces') or a Measure itself."""
    if isinstance(measure, Measure):
        return measure
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {', '.join(METRICS)}")
    return MEASURES[measure]


def choose(responses, measure=None) -> Measure:
    """The brand's measure: `measure` when given (a name or 'auto'/None), else NPS where the responses
    have any NPS answer, else CSAT, else CES. ValueError when the named measure has no answers, or the
    responses hold none of the three. `responses` is a Source, a CXDataset or a responses DataFrame."""
    from cxresearch.engine import as_source, reductions  # (the engine: only when choosing from data)

    counts = reductions.score_counts(as_source(responses), [], METRICS).iloc[0] if _has_responses(responses) else None
    answered = {} if counts is None else {name: m.answered(counts) for name, m in MEASURES.items()}
    if measure not in (None, "auto"):
        chosen = get(measure)
        if not answered.get(chosen.name, 0):
            raise ValueError(f"the measure is set to {chosen.label}, but no response has a {chosen.name} answer; "
                             f"answered: {_answered_text(answered)}")
        return chosen
    for name in METRICS:
        if answered.get(name, 0):
            return MEASURES[name]
    raise ValueError(f"no response has an NPS, CSAT or CES answer ({_answered_text(answered)}): nothing to measure")


def _has_responses(responses) -> bool:
    if isinstance(responses, pd.DataFrame):
        return len(responses) > 0
    return responses.has("responses") if hasattr(responses, "has") else len(responses.responses) > 0


def _answered_text(answered: dict) -> str:
    return ", ".join(f"{name} {int(n):,}" for name, n in answered.items()) or "no responses"
