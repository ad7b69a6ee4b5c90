"""cx.text: what customers write, per location (a measures-stage module).

A comment becomes a bag of terms in the same way in every language: links, e-mail addresses, phone
and card numbers are removed first (`redact`), then case and accents are folded ("Não" -> "nao"),
numbers and redacted spans dropped, and the words kept are those outside the language's stop list
(`stop_words`); scripts written without spaces are cut into character pairs. `corpus(data)` counts
the terms of every comment, on an engine one block of locations at a time; `distinctive_terms` finds
the terms that set one group of comments apart (Monroe, Colaresi & Quinn 2008), `location_terms`
does so for every location against the brand, and `topics` finds what comments talk about.

This module gathers the two halves: the counting (`cxresearch.measures.terms`) and the topics
(`cxresearch.measures.topics`).
"""

from cxresearch.measures.terms import (
    KEEP,
    Corpus,
    corpus,
    detect_language,
    distinctive_terms,
    fold,
    language_name,
    location_terms,
    log_odds_z,
    redact,
    stop_words,
    terms,
)
from cxresearch.measures.topics import TopicsResult, choose_n_topics, compared_periods, topics

__all__ = ["KEEP", "Corpus", "TopicsResult", "choose_n_topics", "compared_periods", "corpus", "detect_language",
           "distinctive_terms", "fold", "language_name", "location_terms", "log_odds_z", "redact", "stop_words", "terms",
           "topics"]
