"""What comments talk about: topics found by non-negative matrix factorisation, with their shares,
their score gap and their trend, each with its interval (`cx.text.topics`).

The comments' term counts (`cx.text.corpus`) are weighted by TF-IDF (sublinear, so a word said twice
is not twice the evidence) and factorised by scikit-learn's NMF into `n_topics` topics, each a
weighting of terms. The number of topics, when not given, is the one whose topics come back most
alike when the factorisation is repeated on random halves of the comments (the stability of Greene,
O'Callaghan & Cunningham 2014: the mean Jaccard agreement of the matched topics' top 10 terms), in
`k_range`. Each comment is then counted under the topic it is most about (none when no kept term is
in it), so a topic's share is the share of comments mainly about it.

Per topic: a label from its top words, two example comments (redacted), the share of comments with a
Wilson interval, overall, per location (suppressed below `min_n` comments) and per period; the
brand's measure among its comments against the other comments, the gap in points with a 95%
interval (Welch) and a Benjamini-Hochberg q-value across the topics; and the change of its share from
the previous period to the last.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse, stats

from cxresearch.measures import measure as measures
from cxresearch.measures.intervals import bh_q, proportion_difference, wilson_interval, z_value
from cxresearch.measures.terms import Corpus, corpus, redact

__all__ = ["TopicsResult", "choose_n_topics", "compared_periods", "topics"]

K_RANGE = range(3, 11)
TOP_TERMS = 10


@dataclass
class TopicsResult:
    """The topics of a brand's comments. `table`: one row per topic (topic, label, terms, comments,
    share with share_low/share_high, the measure's value among the topic's comments (`value`) and the
    others' (`value_rest`), gap with gap_low/gap_high and its q-value, share_previous, share_last and
    change with change_low/change_high from the previous period to the last, example_1, example_2).
    `by_location`, `by_period`: shares with Wilson intervals. `stability`: the agreement per number
    of topics tried (empty when `n_topics` was given). `assignment`: each comment's topic (0: none).
    `comments`: per comment its location_id, responded_at and topic (the assignment with where and
    when, which `cx.alerts(..., topics=)` needs to say what customers wrote about during an alert)."""

    table: pd.DataFrame
    by_location: pd.DataFrame
    by_period: pd.DataFrame
    stability: pd.DataFrame
    measure: str
    language: str
    n_comments: int
    periods: tuple = ()
    compared: tuple = ()  # the two periods the change compares (the last two with min_n comments)
    assignment: np.ndarray = field(default=None, repr=False)
    comments: pd.DataFrame = field(default=None, repr=False)

    def summary(self) -> str:
        """The topics in plain words, largest first, with their ranges."""
        m = measures.get(self.measure)
        lines = [f"{len(self.table)} topics in {self.n_comments:,} comments (language: {self.language}); "
                 "each comment is counted under the topic it is most about."]
        if not self.stability.empty:
            best = self.stability.loc[self.stability["chosen"]].iloc[0]
            lines.append(f"Number of topics chosen by stability: {int(best['n_topics'])} "
                         f"(agreement {best['stability']:.2f} across refits on random halves).")
        for row in self.table.sort_values("share", ascending=False).itertuples():
            gap = ("" if pd.isna(row.gap) else
                   f"; {m.label} {row.gap:+.0f} points against the other comments "
                   f"(95% range {row.gap_low:+.0f} to {row.gap_high:+.0f})")
            lines.append(f"- {row.label}: {100 * row.share:.0f}% of comments "
                         f"(95% range {100 * row.share_low:.0f}% to {100 * row.share_high:.0f}%, n={row.comments:,}){gap}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def topics(data, n_topics: int | None = None, seed: int = 0, measure=None, language: str | None = None,
           period: str = "Q", min_n: int = 30, k_range=K_RANGE, fit_rows: int = 50_000, stability_rows: int = 5_000,
           runs: int = 4, level: float = 0.95) -> TopicsResult:
    """The topics of the comments in `data` (a responses DataFrame, a CXDataset, an engine Source or a
    `Corpus`). `n_topics` None chooses it by stability in `k_range`; the factorisation is fitted on
    at most `fit_rows` comments (a seeded random sample) and every comment is then assigned. `measure`
    is the brand's (default: `measure.choose`); `min_n` the fewest comments a location needs for its
    shares to be shown."""
    built = data if isinstance(data, Corpus) else corpus(data, language=language)
    if len(built) < 20 or built.counts.shape[1] < 3:
        raise ValueError(f"too few comments to find topics: {len(built)} comments with "
                         f"{built.counts.shape[1]} terms used often enough (need 20 comments and 3 terms)")
    m = measures.choose(built.docs, measure)
    weights = _tfidf(built.counts)
    rng = np.random.default_rng(seed)
    stability = pd.DataFrame(columns=["n_topics", "stability", "chosen"])
    if n_topics is None:
        stability = choose_n_topics(weights, k_range, seed=seed, rows=stability_rows, runs=runs)
        n_topics = int(stability.loc[stability["chosen"], "n_topics"].iloc[0])
    fit_on = _sample(rng, weights.shape[0], fit_rows)
    components = _nmf(weights[fit_on], n_topics, seed).components_
    doc_weights = _assign_weights(weights, components)
    assignment = np.where(doc_weights.max(axis=1) > 0, doc_weights.argmax(axis=1) + 1, 0)
    periods = _periods(built, period)
    compared = _compared(periods, min_n)
    table = _topic_table(built, components, doc_weights, assignment, m, level, periods, compared)
    by_location = _shares(built.docs["location_id"].astype(str).rename("location_id"), assignment, table, level)
    by_location["suppressed"] = by_location["total"] < min_n
    by_location.loc[by_location["suppressed"], ["share", "share_low", "share_high"]] = np.nan
    return TopicsResult(table=table, by_location=by_location,
                        by_period=_shares(periods.astype(str).rename("period"), assignment, table, level),
                        stability=stability, measure=m.name, language=built.language, n_comments=len(built),
                        periods=tuple(periods.cat.categories.astype(str)), compared=compared, assignment=assignment,
                        comments=pd.DataFrame({"location_id": built.docs["location_id"].astype(str).astype("category"),
                                               "responded_at": built.docs["responded_at"],
                                               "topic": assignment.astype("int16")}, index=built.docs.index))


def _tfidf(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    from sklearn.feature_extraction.text import TfidfTransformer

    return TfidfTransformer(sublinear_tf=True).fit_transform(counts).tocsr()


def _nmf(weights, k: int, seed: int):
    """NMF of the TF-IDF weights. A fit that has not met its tolerance in 400 iterations is used as it is
    (its topics' top terms, all that is compared or shown, have settled long before), without a warning."""
    import warnings

    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=400, tol=1e-4).fit(weights)


def _sample(rng: np.random.Generator, n: int, rows: int) -> np.ndarray:
    return np.arange(n) if n <= rows else np.sort(rng.choice(n, size=rows, replace=False))


def choose_n_topics(weights, k_range=K_RANGE, seed: int = 0, rows: int = 5_000, runs: int = 4) -> pd.DataFrame:
    """The stability of each number of topics in `k_range`: NMF on a reference sample of at most `rows`
    comments, then on `runs` random halves of it; the agreement of a refit with the reference is the
    mean Jaccard overlap of matched topics' top 10 terms (matched by the Hungarian algorithm), and a
    number's stability the mean over refits. The most stable number is `chosen` (the smaller on a tie)."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(seed)
    reference_rows = _sample(rng, weights.shape[0], rows)
    reference = weights[reference_rows]
    out = []
    for k in k_range:
        if k >= min(reference.shape):
            continue
        ref_top = _top_sets(_nmf(reference, k, seed).components_)
        agreement = []
        for run in range(runs):
            half = np.sort(rng.choice(reference.shape[0], size=reference.shape[0] // 2, replace=False))
            top = _top_sets(_nmf(reference[half], k, seed + run + 1).components_)
            jaccard = np.array([[len(a & b) / len(a | b) for b in top] for a in ref_top])
            rows_, cols = linear_sum_assignment(-jaccard)
            agreement.append(jaccard[rows_, cols].mean())
        out.append({"n_topics": k, "stability": float(np.mean(agreement))})
    if not out:
        raise ValueError("too few comments or terms for any number of topics in k_range")
    frame = pd.DataFrame(out)
    best = frame["stability"].round(3).max()
    frame["chosen"] = False
    frame.loc[frame.index[frame["stability"].round(3) == best][0], "chosen"] = True
    return frame


def _top_sets(components: np.ndarray) -> list[set]:
    return [set(np.argsort(-row, kind="stable")[:TOP_TERMS]) for row in components]


def _assign_weights(weights, components: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Each comment's non-negative topic weights given the topics (NMF's transform, by chunks)."""
    from sklearn.decomposition import non_negative_factorization

    parts = []
    for start in range(0, weights.shape[0], chunk):
        w, _, _ = non_negative_factorization(weights[start:start + chunk], H=components, n_components=len(components),
                                             init="custom", update_H=False, max_iter=200, tol=1e-4)
        parts.append(w)
    return np.vstack(parts) if parts else np.zeros((0, len(components)))


def _label(components_row: np.ndarray, vocabulary: np.ndarray, words: int = 3) -> tuple[str, str]:
    """(a label from the topic's top single words, its top terms as a list)."""
    order = np.argsort(-components_row, kind="stable")
    top = [str(vocabulary[i]) for i in order[:TOP_TERMS] if components_row[i] > 0]
    single = [t for t in top if " " not in t][:words] or top[:words]
    return " / ".join(single), ", ".join(top[:8])


def _topic_table(built: Corpus, components, doc_weights, assignment, m, level, periods, compared) -> pd.DataFrame:
    n = len(built)
    contributions = m.contributions(built.docs[m.name]).to_numpy(dtype="float64")
    codes, labels = periods.cat.codes.to_numpy(), list(periods.cat.categories.astype(str))
    compared = tuple(labels.index(label) for label in compared)  # as codes
    ids = set(built.docs["customer_id"].dropna().astype(str)) if "customer_id" in built.docs else ()
    rows = []
    for t in range(1, len(components) + 1):
        on = assignment == t
        label, top = _label(components[t - 1], built.vocabulary)
        low, high = wilson_interval(on.sum(), n, level)
        gap = _gap(contributions[on], contributions[~on], level)
        change = _share_change(on, codes, compared, level)
        rows.append({"topic": t, "label": label, "terms": top, "comments": int(on.sum()), "share": on.mean(),
                     "share_low": float(low), "share_high": float(high), **gap, **change,
                     **_examples(built, doc_weights, on, t, ids)})
    table = pd.DataFrame(rows)
    table["q"], table["change_q"] = bh_q(table["p"]), bh_q(table["change_p"])  # across the topics
    return table.drop(columns=["p", "change_p"])


def _gap(on: np.ndarray, rest: np.ndarray, level: float) -> dict:
    """The measure among a topic's comments, among the rest, and the gap with a Welch interval."""
    on, rest = on[~np.isnan(on)], rest[~np.isnan(rest)]
    out = {"n_scored": len(on), "value": np.nan, "value_rest": np.nan, "gap": np.nan, "gap_low": np.nan,
           "gap_high": np.nan, "p": np.nan}
    if len(on) < 2 or len(rest) < 2:
        return out
    gap = on.mean() - rest.mean()
    se = np.sqrt(on.var(ddof=1) / len(on) + rest.var(ddof=1) / len(rest))
    half = z_value(level) * se
    p = 2 * stats.norm.sf(abs(gap) / se) if se > 0 else (0.0 if gap != 0 else 1.0)
    return {**out, "value": on.mean(), "value_rest": rest.mean(), "gap": gap, "gap_low": gap - half,
            "gap_high": gap + half, "p": p}


def compared_periods(built: Corpus, period: str = "Q", min_n: int = 30) -> tuple[str, ...]:
    """The last two periods with at least `min_n` comments each (as `cx.trend` compares the last two
    with enough answers, not a period just begun), or () when fewer than two have that many."""
    return _compared(_periods(built, period), min_n)


def _compared(periods: pd.Series, min_n: int) -> tuple[str, ...]:
    counts = periods.value_counts(sort=False)
    enough = [str(p) for p, n in counts.items() if n >= max(min_n, 1)]
    return tuple(enough[-2:]) if len(enough) >= 2 else ()


def _share_change(on: np.ndarray, codes: np.ndarray, compared: tuple, level: float) -> dict:
    """The topic's share of comments in the two `compared` periods (their codes), and the change with a
    Newcombe (hybrid Wilson) interval; missing when there are no two such periods."""
    out = {"share_previous": np.nan, "share_last": np.nan, "change": np.nan, "change_low": np.nan,
           "change_high": np.nan, "change_p": np.nan}
    if not compared:
        return out
    first, last = codes == compared[0], codes == compared[1]
    d = proportion_difference(on[first].sum(), first.sum(), on[last].sum(), last.sum(), level)
    return {"share_previous": d["share_1"], "share_last": d["share_2"], "change": d["change"],
            "change_low": d["low"], "change_high": d["high"], "change_p": d["p"]}


def _examples(built: Corpus, doc_weights, on: np.ndarray, t: int, ids, count: int = 2, max_chars: int = 240) -> dict:
    """Two of the topic's comments most clearly about it (the largest share of their weight on it,
    among those of 30 to `max_chars` characters where there are such, shorter first), redacted of
    links, personal data and the customer `ids`."""
    candidates = np.flatnonzero(on)
    out = {f"example_{i + 1}": "" for i in range(count)}
    if len(candidates) == 0:
        return out
    purity = doc_weights[candidates, t - 1] / doc_weights[candidates].sum(axis=1)
    chars = built.docs["chars"].to_numpy()[candidates] if "chars" in built.docs else np.zeros(len(candidates))
    readable = (chars >= 30) & (chars <= max_chars)  # a sentence, not one word, and short enough to quote
    order = np.lexsort((chars, -np.round(purity, 1), ~readable))
    texts, seen = [], set()
    for start in range(0, min(len(order), 500), 50):  # (fetched 50 at a time until two distinct ones)
        for text in built.texts(candidates[order[start:start + 50]]):
            clean = " ".join(redact(text, ids).split())
            if clean.casefold() not in seen and len(texts) < count:
                seen.add(clean.casefold())
                texts.append(clean if len(clean) <= max_chars else clean[:max_chars - 1].rstrip() + "…")
        if len(texts) == count:
            break
    return {**out, **{f"example_{i + 1}": text for i, text in enumerate(texts)}}


def _periods(built: Corpus, period: str) -> pd.Series:
    stamps = pd.to_datetime(built.docs["responded_at"], utc=True).dt.tz_localize(None)
    labels = stamps.dt.to_period(period)
    categories = pd.period_range(labels.min(), labels.max(), freq=period) if len(labels) else []
    return pd.Series(pd.Categorical(labels, categories=categories))


def _shares(keys: pd.Series, assignment, table, level: float) -> pd.DataFrame:
    """Per value of `keys` (the comments' location or period, named) and topic: comments on it, the
    comments there in all, and the share with its Wilson interval."""
    name = keys.name
    frame = pd.DataFrame({name: keys.to_numpy(), "topic": assignment})
    total = frame.groupby(name).size().rename("total")
    counts = pd.crosstab(frame[name], frame["topic"]).reindex(columns=table["topic"], fill_value=0)
    long = counts.stack().rename("comments").reset_index().merge(total, on=name)
    low, high = wilson_interval(long["comments"], long["total"], level)
    long["share"], long["share_low"], long["share_high"] = long["comments"] / long["total"], low, high
    long = long.merge(table[["topic", "label"]], on="topic")
    return long[[name, "topic", "label", "comments", "total", "share", "share_low", "share_high"]]
