"""What customers write, counted so that it can be compared: terms, corpus, distinctive terms (the
counting half of `cx.text`; `cxresearch.measures.topics` is the other).

A comment becomes a bag of terms in the same way in every language: links, e-mail addresses, phone
and card numbers are removed first (`redact`), then case and accents are folded ("Não" -> "nao"),
numbers and redacted spans dropped, and the words kept are those outside the language's stop list
(from the `stop-words` package, which ships its lists, and scikit-learn's for English: nothing is
downloaded at run time), less a few words such lists drop although they carry CX meaning (`KEEP`:
"bom", "tempo", "valor" in Portuguese). Scripts written without spaces (Chinese, Japanese, Thai) are
cut into overlapping character pairs. Terms are single words and pairs of neighbouring words; terms
in fewer than `min_df` comments or in more than `max_df` of them are pruned.

`corpus(data)` counts the terms of every comment, fetching the texts one block of locations at a
time from an engine (`cx.connect`), so a brand's comments need not fit in memory at once, and only
the counts and each comment's location, date and scores are kept. A DataFrame of responses gives the
same corpus, row for row. `distinctive_terms` then finds the terms that set one group of comments
apart from the rest (Monroe, Colaresi & Quinn 2008), `location_terms` does so for every location
against the rest of the brand in one pass, and `topics` (cxresearch.measures.topics) finds what
comments talk about.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

__all__ = ["Corpus", "KEEP", "corpus", "detect_language", "distinctive_terms", "fold", "language_name", "location_terms",
           "redact", "stop_words", "terms"]

# what a comment must not carry into a report: e-mail addresses, phone and card numbers (long digit
# runs, with spaces, dashes or brackets), links
PERSONAL_DATA = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d\s()-]{6,}\d")
LINK = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
TOKEN = re.compile(r"[\w-]{4,}")
REMOVED = "[removed]"

WORD = re.compile(r"[^\W\d_]+")  # letters only: numbers and punctuation split words and are dropped
SPACELESS = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
KANA = re.compile(r"[\u3040-\u30ff]")
# words generic stop lists drop although CX comments depend on them (good, time, value, hours)
# and the negations, which turn "happy" into "not happy"
KEEP = {"en": {"not", "no", "never", "nothing"},
        "pt": {"bom", "bem", "tempo", "valor", "horas", "não", "nunca", "nada"},
        "es": {"bien", "bueno", "tiempo", "valor", "horas", "no", "nunca", "nada"},
        "fr": {"bien", "bon", "temps", "prix", "ne", "pas", "jamais", "rien"},
        "it": {"bene", "buono", "tempo", "prezzo", "non", "mai", "niente"},
        "de": {"gut", "zeit", "preis", "nicht", "kein", "keine", "nie"}}
CLAUSE = re.compile(r"[.!?;:,\n\r()\[\]\u3001\u3002\uff01\uff0c\uff1f]+")  # pairs never cross these
NAMES = {"en": "english"}  # scikit-learn's list for English; the stop-words package for the others
MIN_DF, MAX_DF = 5, 0.5


def redact(text: str, ids=()) -> str:
    """`text` with links, e-mail addresses, phone and card numbers, and any of `ids` (customer ids, say)
    that it contains as a word, each replaced by [removed]."""
    out = PERSONAL_DATA.sub(REMOVED, LINK.sub(REMOVED, text))
    known = set(ids)
    if known:
        out = TOKEN.sub(lambda match: REMOVED if match.group(0) in known else match.group(0), out)
    return out


def fold(text: str) -> str:
    """Case and accents folded: 'Não' -> 'nao', 'Straße' -> 'strasse' (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def stop_words(language: str) -> frozenset:
    """The folded stop words of `language` (an ISO 639-1 code: en, pt, es, zh, ...), less `KEEP`."""
    if language == "en":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as words
    else:
        import stop_words as package

        if language not in package.LANGUAGE_MAPPING:
            known = ", ".join(sorted(["en", *package.LANGUAGE_MAPPING]))
            raise ValueError(f"no stop-word list for language {language!r}; known: {known}")
        words = package.get_stop_words(language)
    folded = {fold(w) for w in words}
    return frozenset(folded - {fold(w) for w in KEEP.get(language, ())})


def language_name(language: str) -> str:
    """The language's name in English: 'pt' -> 'Portuguese' (the code itself when unknown)."""
    import stop_words as package

    return {"en": "English", **{k: v.title() for k, v in package.LANGUAGE_MAPPING.items()}}.get(language, language)


def terms(text: str, language: str = "en", pairs: bool = True) -> list[str]:
    """The terms of one comment: its words outside the stop list (and, with `pairs`, each pair of
    neighbouring kept words, 'long queue'); runs of a script written without spaces as character pairs."""
    stop = stop_words(language)
    out, joined = [], []
    for clause in CLAUSE.split(fold(redact(text)).replace(REMOVED, ".")):
        words = []
        for word in WORD.findall(clause):
            if SPACELESS.search(word):
                words.extend(_character_pairs(word, stop))
            elif len(word) > 1 and word not in stop:
                words.append(word)
        out += words
        if pairs:
            joined += [f"{a} {b}" for a, b in zip(words, words[1:])]
    return out + joined


def _character_pairs(run: str, stop: frozenset) -> list[str]:
    """Overlapping character pairs of a run of Chinese, Japanese or Thai (the single character when
    the run is one long), stop words removed first."""
    chars = [c for c in run if c not in stop]
    if len(chars) == 1:
        return chars
    return [a + b for a, b in zip(chars, chars[1:])]


def detect_language(texts, sample: int = 2000) -> str:
    """The most likely language of `texts` (ISO 639-1): Chinese or Japanese when most characters are
    written without spaces, else the language whose stop words cover the most words in a sample.
    Say the language (`language=`) when it is known: this is a default, not a classifier."""
    import stop_words as package

    values = pd.Series(texts, dtype="object").dropna().astype(str).head(sample)
    if values.empty:
        return "en"
    joined = " ".join(values)
    letters = max(1, sum(ch.isalpha() for ch in joined))
    if len(SPACELESS.findall(joined)) / letters > 0.3:
        return "ja" if KANA.search(joined) else "zh"
    words = WORD.findall(fold(joined))
    scores = {"en": _coverage(words, stop_words("en"))}
    for code in package.LANGUAGE_MAPPING:
        if code not in ("zh", "ja", "ko", "th"):
            scores[code] = _coverage(words, stop_words(code))
    return max(scores, key=scores.get)


def _coverage(words: list[str], stop: frozenset) -> float:
    """Share of `words` that are stop words, counting only short function words (up to 4 letters),
    so that long lists do not win by size."""
    return sum(1 for w in words if len(w) <= 4 and w in stop) / max(1, len(words))


# --- the corpus: term counts per comment -------------------------------------------------------------

DOC_COLUMNS = ("response_id", "location_id", "customer_id", "responded_at", "nps", "csat", "ces")


@dataclass
class Corpus:
    """Term counts of a brand's comments: `counts` (comments x terms, sparse), `vocabulary` (the
    terms, in column order), `docs` (per comment: its row in the responses (`row`, when built from a
    DataFrame), response_id, location_id, customer_id, responded_at, the scores and `chars`, its
    length) and the
    `language`. Comments are ordered by location, then as they came. `texts(rows)` fetches the
    original text of some comments (for examples), without keeping them all in memory."""

    counts: object  # scipy.sparse.csr_matrix
    vocabulary: np.ndarray
    docs: pd.DataFrame
    language: str
    fetch: object = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.counts.shape[0]

    def texts(self, rows) -> list[str]:
        """The comments at positions `rows` of the corpus (docs order), as written."""
        rows = list(rows)
        return self.fetch(self.docs.iloc[rows]) if rows else []

    def location_counts(self, binary: bool = False):
        """(locations, a locations x terms matrix of term counts, or with `binary` of comments
        mentioning each term)."""
        from scipy import sparse

        codes, locations = pd.factorize(self.docs["location_id"], sort=True)
        member = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                                   shape=(len(locations), len(codes)))
        counts = (self.counts > 0).astype("float64") if binary else self.counts
        return np.asarray(locations), sparse.csr_matrix(member @ counts)


def corpus(data, language: str | None = None, text: str = "comment", min_df: int = MIN_DF, max_df: float = MAX_DF,
           pairs: bool = True, rows_per_batch: int = 200_000, progress=None) -> Corpus:
    """The term counts of every comment in `data`: a responses DataFrame, a CXDataset or an engine
    Source (`cx.connect`), whose comments are fetched one block of locations at a time (about
    `rows_per_batch` comments each). `language` defaults to `detect_language` on the first block.
    Terms in fewer than `min_df` comments or in more than `max_df` (a share) of them are dropped."""
    from scipy import sparse

    batches, fetch = _batches(data, text, rows_per_batch)
    vocabulary: dict[str, int] = {}
    blocks, metas = [], []
    for i, batch in enumerate(batches):
        if language is None:
            language = detect_language(batch[text])
        blocks.append(_count_block(batch[text], language, pairs, vocabulary))
        metas.append(batch.drop(columns=text).assign(chars=batch[text].str.len().to_numpy()))
        if progress is not None:
            progress(i + 1, sum(len(m) for m in metas))
    language = language or "en"
    docs = pd.concat(metas, ignore_index=True) if metas else pd.DataFrame(columns=list(DOC_COLUMNS))
    for name in ("nps", "csat", "ces"):  # a brand without a score still has its column, empty
        if name not in docs:
            docs[name] = pd.array([pd.NA] * len(docs), dtype="Int8")
    width = len(vocabulary)
    counts = sparse.vstack([sparse.csr_matrix((b.data, b.indices, b.indptr), shape=(b.shape[0], width))
                            for b in blocks]).tocsr() if blocks else sparse.csr_matrix((0, 0))
    terms_array = np.array(sorted(vocabulary, key=vocabulary.get), dtype=object)
    counts, terms_array = _prune(counts, terms_array, min_df, max_df)
    return Corpus(counts=counts, vocabulary=terms_array, docs=docs.reset_index(drop=True), language=language,
                  fetch=fetch)


def _count_block(texts: pd.Series, language: str, pairs: bool, vocabulary: dict):
    """Counts of one block of comments against the growing `vocabulary` (term -> column)."""
    from scipy import sparse

    indptr, indices = [0], []
    for value in texts:
        for term in terms(value, language, pairs):
            indices.append(vocabulary.setdefault(term, len(vocabulary)))
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype="float64")
    matrix = sparse.csr_matrix((data, np.array(indices, dtype=np.int64), np.array(indptr, dtype=np.int64)),
                               shape=(len(texts), len(vocabulary)))
    matrix.sum_duplicates()
    return matrix


def _prune(counts, vocabulary: np.ndarray, min_df: int, max_df: float):
    """Keep the terms in at least `min_df` comments and at most `max_df` of them, in alphabetical order."""
    if counts.shape[0] == 0:
        return counts, vocabulary
    df = np.asarray((counts > 0).sum(axis=0)).ravel()
    keep = (df >= min_df) & (df <= max_df * counts.shape[0])
    order = np.flatnonzero(keep)[np.argsort(vocabulary[keep], kind="stable")]
    return counts[:, order].tocsr(), vocabulary[order]


def _batches(data, text: str, rows_per_batch: int):
    """(an iterator of comment blocks, each a DataFrame of DOC_COLUMNS present plus `text`, in
    location order; a function fetching the texts of some docs)."""
    if isinstance(data, pd.DataFrame):
        return _frame_batches(data, text, rows_per_batch)
    if hasattr(data, "table") and hasattr(data, "con"):
        from cxresearch.engine.reductions import comment_batches, comments_of

        columns = [c for c in DOC_COLUMNS if c in data.table("responses").columns]
        return (comment_batches(data, columns, text, rows_per_batch),
                lambda docs: comments_of(data, docs["response_id"], text))
    return _frame_batches(data.responses, text, rows_per_batch)


def _frame_batches(responses: pd.DataFrame, text: str, rows_per_batch: int):
    with_text = responses[responses[text].notna()]
    columns = [c for c in DOC_COLUMNS if c in with_text.columns]
    frame = with_text[columns].assign(**{text: with_text[text].astype(str)}).reset_index(drop=True)
    frame.insert(0, "row", np.flatnonzero(responses[text].notna().to_numpy()))
    frame = frame.sort_values("location_id", kind="stable").reset_index(drop=True)
    starts = _block_starts(frame["location_id"], rows_per_batch)
    blocks = (frame.iloc[a:b] for a, b in zip(starts, starts[1:]))
    return blocks, lambda docs: responses[text].iloc[docs["row"].to_numpy()].astype(str).tolist()


def _block_starts(locations: pd.Series, rows_per_batch: int) -> list[int]:
    """Row offsets cutting sorted `locations` into blocks of whole locations, about `rows_per_batch` each."""
    change = np.flatnonzero(locations.ne(locations.shift()).to_numpy())
    starts, last = [0], 0
    for offset in change[1:]:
        if offset - last >= rows_per_batch:
            starts.append(int(offset))
            last = offset
    return starts + [len(locations)]


# --- distinctive terms -------------------------------------------------------------------------------

def distinctive_terms(data, group, language: str | None = None, text: str = "comment", prior: float = 1.0,
                      min_count: int = 5, top: int | None = 20) -> pd.DataFrame:
    """The terms that set the comments of `group` apart from the rest, by the weighted log-odds ratio
    with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, eq. 22): with counts y_g and
    y_r of a term in the group and the rest, n_g and n_r their sums, and a prior a_w = a0 * (the term's
    share of the whole corpus), a0 = `prior` * min(n_g, n_r),

        delta = log((y_g + a_w) / (n_g + a0 - y_g - a_w)) - log((y_r + a_w) / (n_r + a0 - y_r - a_w)),
        z = delta / sqrt(1 / (y_g + a_w) + 1 / (y_r + a_w)).

    `data` is a responses DataFrame (then `group` is a boolean Series or array over its rows, e.g.
    `responses["csat"] <= 2`) or a `Corpus` (`group` over `corpus.docs`). Returns the `top` terms by
    z (all with `top=None`) with at least `min_count` uses in the group: term, z, count_group,
    count_rest, and the share of the group's and of the rest's comments using the term."""
    built = data if isinstance(data, Corpus) else corpus(data, language=language, text=text)
    mask = _group_mask(data, built, group)
    if not mask.any() or mask.all():
        raise ValueError("the group must hold some comments and leave some out: "
                         f"it has {int(mask.sum())} of {len(mask)} comments")
    y_g = np.asarray(built.counts[mask].sum(axis=0)).ravel()
    y_r = np.asarray(built.counts[~mask].sum(axis=0)).ravel()
    z = log_odds_z(y_g, y_r, prior)
    docs_g = np.asarray((built.counts[mask] > 0).sum(axis=0)).ravel()
    docs_r = np.asarray((built.counts[~mask] > 0).sum(axis=0)).ravel()
    out = pd.DataFrame({"term": built.vocabulary.astype(str), "z": z, "count_group": y_g.astype("int64"),
                        "count_rest": y_r.astype("int64"), "share_group": docs_g / mask.sum(),
                        "share_rest": docs_r / (~mask).sum()})
    out = _collapse(out[out["count_group"] >= min_count].sort_values(["z", "term"], ascending=[False, True],
                                                                     kind="stable"))
    return out if top is None else out.head(top)


def _collapse(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (sorted by z) without the terms that only repeat one already listed: a word or pair
    sharing a word with a listed term used exactly as often ('come' beside 'not come', 'floors messy'
    beside 'dirty floors'). At equal z the pair is listed first, as it reads better."""
    if frame.empty:
        return frame.reset_index(drop=True)
    frame = frame.assign(_words=frame["term"].str.count(" ") + 1)
    frame = frame.sort_values(["z", "_words", "term"], ascending=[False, False, True], kind="stable")
    kept, seen = [], []
    for index, term, count in zip(frame.index, frame["term"], frame["count_group"]):
        words = set(term.split())
        if not any(count == c and words & w for w, c in seen):
            kept.append(index)
        seen.append((words, count))
    return frame.loc[kept].drop(columns="_words").reset_index(drop=True)


def log_odds_z(y_g: np.ndarray, y_r: np.ndarray, prior: float = 1.0) -> np.ndarray:
    """z of the weighted log-odds ratio with an informative Dirichlet prior, elementwise (the last
    axis is the terms; see `distinctive_terms`). The prior's shape is the corpus's term shares, its
    weight `prior` times the word count of the smaller side (a0), so that one location against a
    brand of a thousand is shrunk as much as one of ten."""
    y_g, y_r = np.asarray(y_g, dtype="float64"), np.asarray(y_r, dtype="float64")
    both = y_g + y_r
    n_g, n_r = y_g.sum(axis=-1, keepdims=True), y_r.sum(axis=-1, keepdims=True)
    return _log_odds(y_g, y_r, n_g, n_r, both / both.sum(axis=-1, keepdims=True), prior)


def _log_odds(y_g, y_r, n_g, n_r, share, prior: float) -> np.ndarray:
    """`log_odds_z` given the sides' word counts n_g, n_r (over all terms) and the terms' corpus shares,
    so that it can run on a subset of the terms or of the groups at a time."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a0 = prior * np.minimum(n_g, n_r)
        alpha = a0 * share
        delta = (np.log((y_g + alpha) / (n_g + a0 - y_g - alpha))
                 - np.log((y_r + alpha) / (n_r + a0 - y_r - alpha)))
        z = delta / np.sqrt(1 / (y_g + alpha) + 1 / (y_r + alpha))
    return np.where(np.isfinite(z), z, 0.0)


def _group_mask(data, built: Corpus, group) -> np.ndarray:
    """`group` as a boolean array over the corpus's comments."""
    values = pd.Series(np.asarray(group, dtype=object)).astype("boolean").fillna(False).to_numpy(bool)  # missing: not in it
    if isinstance(data, Corpus):
        if len(values) != len(built):
            raise ValueError(f"group has {len(values)} values for {len(built)} comments in the corpus")
        return values
    if len(values) != len(data):
        raise ValueError(f"group has {len(values)} values for {len(data)} responses")
    return values[built.docs["row"].to_numpy()]


def location_terms(built: Corpus, top: int = 5, min_count: int = 5, min_comments: int = 30, prior: float = 1.0,
                   fdr: float = 0.05, block: int = 100) -> pd.DataFrame:
    """For every location with at least `min_comments` comments, the terms its customers use more than
    the rest of the brand's, in one pass (`log_odds_z` of each location against all others). A term is
    kept when its one-sided p-value passes Benjamini-Hochberg at `fdr` across all locations and terms
    tested (so a brand of quiet locations lists about none) and it is used at least `min_count`
    times there: location_id, term, z, count_group, count_rest, share_here and share_elsewhere (of
    comments using it), comments (the location's), at most `top` per location. Locations are taken
    `block` at a time, so memory stays flat in the number of locations."""
    from scipy import stats

    from cxresearch.measures.intervals import bh_q  # (scipy: not when only redacting, as a report does)

    locations, counts = built.location_counts()
    _, mentions = built.location_counts(binary=True)
    per_location = np.bincount(pd.factorize(built.docs["location_id"], sort=True)[0], minlength=len(locations))
    columns = ["location_id", "term", "z", "count_group", "count_rest", "share_here", "share_elsewhere", "comments"]
    tested = np.flatnonzero(per_location >= min_comments)
    everywhere = np.asarray(mentions.sum(axis=0)).ravel()  # comments using each term, all locations
    if len(tested) == 0 or counts.shape[1] == 0:
        return pd.DataFrame(columns=columns)
    total = np.asarray(counts.sum(axis=0)).ravel()
    words = np.asarray(counts.sum(axis=1)).ravel()
    usable = np.flatnonzero(total >= min_count)  # a term used fewer times in all can reach min_count nowhere
    share = total[usable] / total.sum()
    counts, mentions = counts[tested][:, usable].tocsr(), mentions[tested][:, usable].tocsr()
    found = {"row": [], "col": [], "z": [], "y": [], "m": []}
    for start in range(0, len(tested), block):
        y = counts[start:start + block].toarray()
        n_g = words[tested[start:start + block], None]
        rows, cols = np.nonzero(y >= min_count)
        z = _log_odds(y[rows, cols], total[usable][cols] - y[rows, cols], n_g[rows, 0], total.sum() - n_g[rows, 0],
                      share[cols], prior)
        found["row"].append(rows + start)
        found["col"].append(cols)
        found["z"].append(z)
        found["y"].append(y[rows, cols])
        found["m"].append(np.asarray(mentions[start:start + block][rows, cols]).ravel())
    row, col, z, y, m = (np.concatenate(found[k]) for k in ("row", "col", "z", "y", "m"))
    passed = bh_q(stats.norm.sf(z)) <= fdr
    row, col, z, y, m = row[passed], col[passed], z[passed], y[passed], m[passed]
    everywhere = everywhere[usable]
    n_here = per_location[tested][row]
    out = pd.DataFrame({"location_id": locations[tested][row], "term": built.vocabulary[usable][col].astype(str),
                        "z": z, "count_group": y.astype("int64"), "count_rest": (total[usable][col] - y).astype("int64"),
                        "share_here": m / n_here, "share_elsewhere": (everywhere[col] - m) / (len(built) - n_here),
                        "comments": n_here.astype("int64")})
    out = out.sort_values(["location_id", "z"], ascending=[True, False], kind="stable")
    out = pd.concat([_collapse(part) for _, part in out.groupby("location_id", sort=False)] or [out])
    return out.groupby("location_id", sort=False).head(top).reset_index(drop=True)
