"""Assembling the canonical tables from the simulated world."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from cxresearch import schema
from cxresearch.synth.params import ATTRIBUTES, FORMATS, PURCHASE_CHANNELS, REGIONS, SEGMENTS, SynthParams, _plain
from cxresearch.synth.truth import _truth
from cxresearch.synth.world import (
    _calendar,
    _check_return_probabilities,
    _draw_fixed,
    _ex_paths,
    _experience,
    _ids,
    _make_customers,
    _make_locations,
    _pick,
    _simulate_purchases,
    _spend,
    _streams,
    _survey,
    incident_shifts,
    planted_comment_topics,
)


def _build(n_locations, n_customers, start, end, seed, survey_rate, horizon_days, params, measure="nps"):
    """Generate everything: returns (canonical tables as a dict, Truth)."""
    if n_locations < 1 or n_customers < 1:
        raise ValueError("n_locations and n_customers must be at least 1")
    if not 0 <= survey_rate <= 1:
        raise ValueError("survey_rate must be within 0..1")
    if measure not in schema.METRICS:
        raise ValueError(f"measure must be one of {', '.join(schema.METRICS)}, not {measure!r}")
    p = params or SynthParams()
    cal = _calendar(start, end)
    rng = _streams(seed)
    loc = _make_locations(n_locations, p, rng["locations"], cal)
    ex, h = _ex_paths(loc, p, rng["ex"], cal.n_quarters)
    exp = _experience(loc, h, p, measure)
    _check_return_probabilities(exp, p)
    cust = _make_customers(n_customers, loc, p, rng["customers"], cal)
    buys = _simulate_purchases(cust, loc, exp, p, rng["purchases"], cal)
    channel = _draw_fixed(rng["spend"], p.purchase_channel_probs, len(buys["time"]))
    revenue = _spend(buys, cust, loc, exp, p, rng["spend"], cal)
    planted = planted_comment_topics(n_locations, p, rng["comments"])
    shifts = incident_shifts(p.incidents, exp, cal)
    resp = _survey(buys, channel, exp, p, survey_rate, rng["survey"], cal, (planted, rng["comments"]), shifts)

    location_ids = _ids("L", n_locations, 4)
    customer_ids = _ids("C", n_customers, 6)
    tables = {
        "locations": _locations_frame(loc, location_ids),
        "customers": _customers_frame(cust, location_ids, customer_ids, cal),
        "transactions": _transactions_frame(buys, channel, revenue, location_ids, customer_ids, cal),
        "responses": _responses_frame(resp, buys, location_ids, customer_ids, cal),
        "employee_experience": _ex_frame(ex, loc, location_ids, cal, rng["ex"]),
    }
    arguments = {"n_locations": n_locations, "n_customers": n_customers, "start": str(start), "end": str(end),
                 "seed": seed, "survey_rate": survey_rate, "horizon_days": horizon_days,
                 "params": _plain(dataclasses.asdict(p)), "measure": measure}
    truth = _truth(arguments, p, loc, ex, exp, cust, buys, location_ids, cal, horizon_days, rng["keydrivers"])
    topics = {location_ids[i]: ATTRIBUTES[j] for i, j in enumerate(planted) if j >= 0}
    incidents = [{"location_id": location_ids[i["location"]], **{k: v for k, v in i.items()
                                                                 if k not in ("location", "from_day", "to_day")}}
                 for i in shifts]
    return tables, dataclasses.replace(truth, comment_topics=topics, incidents=incidents)


def _locations_frame(loc: dict, ids: pd.Series) -> pd.DataFrame:
    region = np.array(REGIONS, dtype=object)[loc["region"]]
    fmt = np.array(FORMATS, dtype=object)[loc["format"]]
    frame = pd.DataFrame({"region": region, "format": fmt})
    number = frame.groupby(["region", "format"]).cumcount().to_numpy() + 1
    name = frame["region"] + " " + frame["format"].str.title() + " " + pd.Series(number).astype("str")
    return pd.DataFrame({"location_id": ids, "name": name, "region": region, "format": fmt,
                         "opened_on": pd.Series(loc["opened_on"]).astype("datetime64[us, UTC]"),
                         "latitude": loc["latitude"], "longitude": loc["longitude"]})


def _customers_frame(cust, location_ids, customer_ids, cal) -> pd.DataFrame:
    first_day = np.floor(cust["first"])
    return pd.DataFrame({"customer_id": customer_ids,
                         "home_location_id": _pick(location_ids, cust["home"]),
                         "first_seen_on": cal.stamps(first_day),
                         "segment": np.array(SEGMENTS, dtype=object)[cust["segment"]]})


def _transactions_frame(buys, channel, revenue, location_ids, customer_ids, cal) -> pd.DataFrame:
    codes = np.array([schema.CHANNELS.index(c) for c in PURCHASE_CHANNELS])[channel]
    return pd.DataFrame({
        "transaction_id": _ids("T", len(revenue), 7),
        "customer_id": _pick(customer_ids, buys["customer"]),
        "location_id": _pick(location_ids, buys["location"]),
        "occurred_at": cal.stamps(buys["time"]),
        "revenue": revenue,
        "channel": pd.Categorical.from_codes(codes, dtype=schema.TRANSACTIONS.column("channel").dtype),
    })


def _responses_frame(resp, buys, location_ids, customer_ids, cal) -> pd.DataFrame:
    purchase = resp["purchase"]
    frame = pd.DataFrame({
        "response_id": _ids("R", len(purchase), 7),
        "location_id": _pick(location_ids, buys["location"][purchase]),
        "responded_at": cal.stamps(resp["time"]),
        "customer_id": _pick(customer_ids, buys["customer"][purchase]),
        "channel": pd.Categorical.from_codes(resp["channel"], dtype=schema.RESPONSES.column("channel").dtype),
        "journey_stage": pd.Categorical.from_codes(resp["stage"],
                                                   dtype=schema.RESPONSES.column("journey_stage").dtype),
        "nps": pd.array(resp["nps"], dtype="Int8"),
        "csat": pd.array(resp["csat"], dtype="Int8"),
        "ces": pd.array(resp["ces"], dtype="Int8"),
        "comment": pd.Series(resp["comment"], dtype="str"),
    })
    for j, name in enumerate(ATTRIBUTES):
        frame[f"attr_{name}"] = pd.array(resp["ratings"][:, j], dtype="Int8")
    return frame


def _ex_frame(ex, loc, location_ids, cal, rng) -> pd.DataFrame:
    """One pulse per location and in-window quarter (quarter index 1..K-1), quarter by quarter."""
    n_loc, n_q = ex.shape
    quarters = np.repeat(np.arange(1, n_q), n_loc)
    locs = np.tile(np.arange(n_loc), n_q - 1)
    staff = np.array([40.0, 20.0, 12.0, 15.0])[loc["format"][locs]]
    respondents = rng.binomial(rng.poisson(staff).astype(np.int64), 0.7).astype("float64")
    return pd.DataFrame({
        "measurement_id": _ids("E", len(locs), 5),
        "location_id": _pick(location_ids, locs),
        "measured_at": pd.Series(cal.quarter_starts[quarters]),
        "ex_score": ex[locs, quarters],
        "respondents": respondents,
    })
