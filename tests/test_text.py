"""cx.text: terms in any language, distinctive terms against worked numbers and a planted truth,
topics on the synthetic brand and on the real Olist sample, the same on the engine as in memory."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cxresearch as cx
from cxresearch.measures import text

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "olist-4k"
real_sample = pytest.mark.skipif(not REAL.is_dir(), reason="the real Olist sample (../shared/realdata/olist-4k) is not "
                                 "here; a fresh clone without it skips these tests")


def test_terms_fold_case_and_accents_and_drop_links_numbers_and_stop_words():
    got = text.terms("Não RECEBI o produto!!! Veja www.loja.com.br, pedido 12345", language="pt")
    assert got[:3] == ["nao", "recebi", "produto"]
    assert "nao recebi" in got and "recebi produto" in got
    assert not any(t in got for t in ("veja", "o", "12345", "www", "loja", "removed"))
    assert "produto pedido" not in got  # a pair never crosses a comma or a full stop


def test_words_that_carry_cx_meaning_survive_the_stop_list():
    assert {"not", "happy", "not happy"} <= set(text.terms("Not happy.", "en"))
    assert {"bom", "tempo"} <= set(text.terms("Muito bom, chegou em pouco tempo", "pt"))


def test_scripts_without_spaces_become_character_pairs_within_a_clause():
    got = text.terms("服务很慢，排队太久", language="zh")
    assert "服务" in got and "排队" in got
    assert "慢排" not in got  # the comma ends the clause


def test_the_language_is_detected_from_the_comments():
    assert text.detect_language(["O produto chegou antes do prazo e muito bem embalado", "Não recebi o pedido"]) == "pt"
    assert text.detect_language(["The staff were rude and the queue was long", "It was fine"]) == "en"
    assert text.detect_language(["服务很慢", "排队太久了"]) == "zh"
    with pytest.raises(ValueError, match="no stop-word list"):
        text.stop_words("xx")


def test_log_odds_z_matches_the_worked_numbers():
    # y_g = (10, 0, 5), y_r = (2, 8, 5): a0 = 1 * min(15, 15) = 15, prior shares (12, 8, 10)/30 -> a = (6, 4, 5)
    # term 1: delta = log(16 / 14) - log(8 / 22) = 1.145132; sd = sqrt(1/16 + 1/8) = 0.433013; z = 2.64457
    z = text.log_odds_z(np.array([10, 0, 5]), np.array([2, 8, 5]))
    delta = math.log(16 / 14) - math.log(8 / 22)
    assert z[0] == pytest.approx(delta / math.sqrt(1 / 16 + 1 / 8), rel=1e-12)
    assert z[0] == pytest.approx(2.64457, abs=1e-4)
    assert z[1] < 0 and z[2] == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def sample_responses():
    return cx.load_dataset(str(SAMPLE)).responses


def test_distinctive_terms_of_a_group_from_a_frame_or_its_corpus_agree(sample_responses):
    r = sample_responses
    low = r["nps"] <= 6
    direct = text.distinctive_terms(r, low, top=None)
    built = text.corpus(r)
    via = text.distinctive_terms(built, low.to_numpy()[built.docs["row"]], top=None)
    pd.testing.assert_frame_equal(direct, via)
    assert list(direct.columns[:4]) == ["term", "z", "count_group", "count_rest"]
    assert direct["z"].is_monotonic_decreasing and (direct["count_group"] >= 5).all()
    assert direct["term"].iloc[0] in {"not", "poor", "poor visit", "not happy", "disappointed"}
    with pytest.raises(ValueError, match="must hold some comments"):
        text.distinctive_terms(built, np.zeros(len(built), dtype=bool))


def test_the_engine_fetches_comments_by_location_and_counts_the_same(sample_responses):
    in_memory = text.corpus(sample_responses)
    on_engine = text.corpus(cx.connect(str(SAMPLE)), rows_per_batch=300)  # about seven blocks of locations
    assert (in_memory.vocabulary == on_engine.vocabulary).all()
    assert (in_memory.counts != on_engine.counts).nnz == 0
    pd.testing.assert_frame_equal(in_memory.docs.drop(columns="row"), on_engine.docs)
    assert on_engine.texts([0, 5]) == in_memory.texts([0, 5])
    frame, engine = text.topics(in_memory, seed=0), text.topics(on_engine, seed=0)
    pd.testing.assert_frame_equal(frame.table, engine.table)


@pytest.fixture(scope="module")
def planted_brand():
    dataset, truth = cx.synth.generate(n_locations=100, n_customers=200_000, seed=11)
    return text.corpus(dataset.responses), truth


def _mentions(found: pd.DataFrame, location: str, topic: str) -> bool:
    words = cx.synth.COMMENT_TOPIC_TERMS[topic]
    return any(w in term.split() for term in found.loc[found["location_id"] == location, "term"] for w in words)


@pytest.mark.slow
def test_planted_topics_come_out_where_they_were_planted_and_not_elsewhere(planted_brand):
    built, truth = planted_brand
    found = text.location_terms(built, top=5)
    planted = truth.comment_topics
    assert len(planted) == 15
    recovered = sum(_mentions(found, location, topic) for location, topic in planted.items())
    assert recovered >= 0.8 * len(planted), f"planted topic among the top 5 terms at {recovered} of {len(planted)}"
    elsewhere = set(found["location_id"]) - set(planted)
    assert len(elsewhere) <= 2, f"terms listed at {len(elsewhere)} locations without a planted topic"


@pytest.mark.slow
def test_topics_of_the_synthetic_brand_are_its_attributes(planted_brand):
    built, _ = planted_brand
    result = text.topics(built, seed=0)
    labels = " ".join(result.table["terms"])
    named = [a for a, words in cx.synth.COMMENT_TOPIC_TERMS.items() if any(w in labels.split(", ") or
                                                                          f" {w}" in labels for w in words)]
    assert len(named) >= 4, f"topics {list(result.table['label'])} name only {named}"
    assert result.table["share"].sum() <= 1 + 1e-9
    assert ((result.table["share_low"] <= result.table["share"]) & (result.table["share"] <= result.table["share_high"])).all()
    assert result.stability["chosen"].sum() == 1
    assert "topics in" in result.summary()
    # per location shares are suppressed below min_n comments
    small = result.by_location[result.by_location["total"] < 30]
    assert small["share"].isna().all()


@real_sample
def test_olist_low_star_comments_are_about_orders_not_received_and_high_ones_praise_delivery(tmp_path):
    from cxresearch.io.importers import olist

    folder = olist(REAL).write(tmp_path / "olist")
    r = cx.load_dataset(str(folder)).responses
    built = text.corpus(r)
    assert built.language == "pt"
    low = text.distinctive_terms(built, (built.docs["csat"] <= 2).fillna(False).to_numpy(bool), top=10)
    high = text.distinctive_terms(built, (built.docs["csat"] >= 4).fillna(False).to_numpy(bool), top=10)
    assert {"recebi", "nao recebi"} & set(low["term"]), list(low["term"])
    assert {"recomendo", "otimo", "excelente", "rapida", "prazo", "antes"} & set(high["term"]), list(high["term"])
    result = text.topics(built, seed=0)
    worst = result.table.sort_values("gap").iloc[0]
    assert "recebi" in worst["terms"] and worst["gap_high"] < 0


def test_the_change_compares_the_last_two_periods_with_enough_comments(sample_responses):
    """A period just begun (a handful of comments) is not compared: the change is between the last
    two periods with min_n comments, and its shares are those periods' own."""
    from cxresearch.measures.topics import compared_periods

    r = sample_responses
    quarter = r["responded_at"].dt.tz_localize(None).dt.to_period("Q")
    last = quarter.max()
    thin = r[(quarter != last) | (r["comment"].notna() & (r.groupby(quarter).cumcount() < 5))]
    built = text.corpus(thin)
    compared = compared_periods(built, "Q", 30)
    assert compared == (str(last - 2), str(last - 1))
    result = text.topics(built, n_topics=3, seed=0)
    assert result.compared == compared
    labels = built.docs["responded_at"].dt.tz_localize(None).dt.to_period("Q").astype(str).to_numpy()
    first = result.table.iloc[0]
    in_last = labels == compared[1]
    assert first["share_last"] == pytest.approx((result.assignment[in_last] == first["topic"]).mean())


def test_too_few_comments_is_a_plain_error_and_examples_are_redacted(sample_responses):
    r = sample_responses
    with pytest.raises(ValueError, match="too few comments to find topics: 0 comments"):
        text.topics(r.assign(comment=pd.NA))
    marked = r.assign(comment=r["comment"].where(r["comment"].isna(), r["comment"] + " Mail me at ana@example.com or "
                                                 "call +44 20 7946 0958, see www.example.com"))
    result = text.topics(marked, n_topics=3, seed=0)
    examples = " ".join(result.table["example_1"]) + " ".join(result.table["example_2"])
    assert "[removed]" in examples
    assert "@" not in examples and "7946" not in examples and "www." not in examples
