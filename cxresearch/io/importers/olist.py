"""The public Olist marketplace export (Kaggle ``olistbr/brazilian-ecommerce``) as canonical tables.

Olist is a Brazilian marketplace: a customer's order holds items of one or more sellers, and after
delivery the customer is e-mailed a 1-5 star review. The importer reads the release's CSV files
(every column as text) from one folder:

- ``olist_orders_dataset.csv``: orders, with customer, status and purchase time (required);
- ``olist_order_items_dataset.csv``: items, with seller, product, price and freight (required);
- ``olist_customers_dataset.csv``: the customer of each order and the person behind it (required);
- ``olist_sellers_dataset.csv``: sellers, with city and state (required);
- ``olist_order_reviews_dataset.csv``: reviews (without it: no responses);
- ``olist_products_dataset.csv``: product categories (without it: every format "unknown");
- ``product_category_name_translation.csv``: English category names (without it: Portuguese ones);
- ``olist_order_payments_dataset.csv``: read and counted, not used (see transactions below).

The geolocation file of the release is not read. What becomes what:

- locations: one per seller with at least one imported item (the sellers file of the release lists
  every seller; the others are set aside as "seller without items in these orders").
  location_id = seller_id, region = seller_state, name = the city title-cased and the first
  characters of the id ("Sao Paulo seller 3f2a"; as many as make every name unique, at least 4),
  format = the seller's main product category by item value (price + freight), in English where
  the translation file has it, with spaces for underscores ("bed bath table"); items without a
  category count as "unknown"; ties go to the first
  category in sort order.
- customers: one per person (customer_unique_id: Olist's customer_id is one per order).
  segment = the customer_state of the person's latest imported order, first_seen_on = their first
  imported purchase; home_location_id is left empty (a marketplace buyer has no home seller).
- transactions: one per order and seller, ``<order_id>-<seller_id>``: customer_id = the person,
  location_id = the seller, occurred_at = order_purchase_timestamp, revenue = the sum of price +
  freight_value of that seller's items in the order, channel = "web". Every order with items is
  imported whatever its order_status (canceled ones included: a purchase made, though not
  delivered); the report counts the imported orders by status, so they can be told apart.
  Payments are not used: an order's payment_value covers all its sellers and differs from its
  items' total for a few orders (the report counts those).
- responses: one per review and order, ``<review_id>-<order_id>`` (a review_id can cover two
  orders): location_id = the order's seller with the largest item value (ties: the first seller id
  in sort order), customer_id = the person, transaction_id = that order and seller's transaction,
  csat = review_score, responded_at = review_answer_timestamp (review_creation_date when the answer
  time is missing, counted), comment = the title and the message, stripped, on two lines (missing
  when both are empty), channel = "web" (the touchpoint the review rates is the web purchase; the
  e-mail is only how it was asked), journey_stage, nps and ces empty.
- Times are naive local time in America/Sao_Paulo (Brazil kept summer time until 2019), converted
  to UTC by `local_to_utc` with the engine's rule for local times: a time in the hour repeated as
  summer time ended is the earlier instant, one in the hour skipped as it began moves on by the
  hour (00:30 is read as 01:30); the report counts both.

Rows that cannot be used are set aside with their reason and counted in the report: an order
without items, with an unknown customer or an unreadable purchase time; an item of an unknown
order or seller, or with a price or freight that is not a number >= 0; a review of an order that
was not imported, a repeated (review_id, order_id), a score outside 1-5; a missing or repeated id
(the first row of an id is used); rows of the lookup files that no imported row uses. For every
file, rows read = rows used + rows set aside.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxresearch.io.importers import ImportResult, Ledger, finish, local_to_utc, read_csv

__all__ = ["FILES", "ZONE", "olist"]

ZONE = "America/Sao_Paulo"
CHANNEL = "web"  # purchases and the reviews of them: one touchpoint
UNKNOWN_CATEGORY = "unknown"
PARTICLES = r"(?<= )(?:D[aeo]s?|E)(?= )"  # da, de, do, das, dos, e: lower case inside a city's name
MIN_SUFFIX = 4  # characters of the seller id in a location name, at least
# name: (file, columns read, required)
FILES = {
    "orders": ("olist_orders_dataset.csv", ("order_id", "customer_id", "order_status", "order_purchase_timestamp"), True),
    "items": ("olist_order_items_dataset.csv", ("order_id", "order_item_id", "product_id", "seller_id", "price",
                                               "freight_value"), True),
    "customers": ("olist_customers_dataset.csv", ("customer_id", "customer_unique_id", "customer_state"), True),
    "sellers": ("olist_sellers_dataset.csv", ("seller_id", "seller_city", "seller_state"), True),
    "reviews": ("olist_order_reviews_dataset.csv", ("review_id", "order_id", "review_score", "review_comment_title",
                                                   "review_comment_message", "review_creation_date",
                                                   "review_answer_timestamp"), False),
    "products": ("olist_products_dataset.csv", ("product_id", "product_category_name"), False),
    "translation": ("product_category_name_translation.csv", ("product_category_name", "product_category_name_english"),
                    False),
    "payments": ("olist_order_payments_dataset.csv", ("order_id", "payment_value"), False),
}


def olist(src) -> ImportResult:
    """Import a folder of the public Olist marketplace export as canonical CX tables.

    Sellers become locations, persons (customer_unique_id) customers, each order's items of one
    seller a transaction, and each review a CSAT response linked to its transaction; the module
    docstring says how each column is made and which rows are set aside.

    Parameters
    ----------
    src : str or Path
        A folder holding the release's CSV files under their own names (at least the orders, order
        items, customers and sellers files; reviews, products, the category translation and payments
        when present). A random sample of orders with all their rows will do.

    Returns
    -------
    ImportResult
        `tables` (locations, customers, responses, transactions, conformed to the schema),
        `report` (per file rows read, used and set aside by reason; rows written per table; notes),
        `summary()` and `write(dest)`.

    Raises
    ------
    IngestError
        `src` is not a folder, a required file is missing, or a file lacks a column it needs.
    """
    folder = Path(src)
    ledger = Ledger()
    raw = {name: _stripped(read_csv(folder, file, columns, required), columns)
           for name, (file, columns, required) in FILES.items()}
    rows = {name: ledger.file(FILES[name][0], frame) for name, frame in raw.items() if frame is not None}
    name_of = {name: FILES[name][0] for name in rows}

    customers = _customers(rows["customers"])
    sellers = _sellers(rows["sellers"])
    orders = _orders(rows["orders"], customers, ledger, name_of["orders"])
    items = _items(rows["items"], orders, sellers, raw["orders"])
    orders = _orders_with_items(rows["orders"], orders, items, raw["items"], ledger, name_of["orders"])

    sold = items[_among(items["order_id"], orders.index)]
    rows["customers"].set_aside(~_among(rows["customers"].frame["customer_id"], orders["customer_id"]),
                                "customer without imported orders")
    rows["sellers"].set_aside(~_among(rows["sellers"].frame["seller_id"], sold["seller_id"]),
                              "seller without items in these orders")
    categories = _categories(rows.get("products"), rows.get("translation"), sold)
    if "products" in rows:
        ledger.note(name_of["items"], 'imported items whose product is not in the products file (category "unknown")',
                    (~_among(sold["product_id"], categories.index)).sum())
    transactions = _transactions(sold, orders)
    tables = {"locations": _locations(sellers, sold, categories), "customers": _persons(orders, transactions),
              "transactions": transactions}
    if "reviews" in rows:
        tables["responses"] = _responses(rows["reviews"], raw["orders"], raw["items"], orders, sold, ledger,
                                         name_of["reviews"])
    if "payments" in rows:
        _payments(rows["payments"], sold, ledger, name_of["payments"])
    return finish("olist", folder, tables, ledger)


def _stripped(frame: pd.DataFrame | None, columns) -> pd.DataFrame | None:
    """The columns used, without surrounding white space (as the engine reads ids); the rest as read."""
    if frame is not None:
        frame[list(columns)] = frame[list(columns)].apply(lambda values: values.str.strip())
    return frame


def _among(values: pd.Series, others) -> pd.Series:
    """Whether each value is one of `others` (as `isin`, a tenth of its time on text ids)."""
    known = pd.Index(pd.unique(pd.Series(others, dtype="str")))
    return pd.Series(known.get_indexer(values) >= 0, index=values.index)


def _blank(values: pd.Series) -> pd.Series:
    return values.str.strip() == ""


def _repeats(rows, columns: list[str]) -> pd.Series:
    """Rows still used that repeat the `columns` of an earlier used row."""
    repeated = pd.Series(False, index=rows.frame.index)
    repeated[rows.kept] = rows.used().duplicated(columns)
    return repeated


def _first_of_each(rows, key: str) -> None:
    """Set aside a blank `key` and every repeat of a key after its first row."""
    rows.set_aside(_blank(rows.frame[key]), f"missing {key}")
    rows.set_aside(_repeats(rows, [key]), f"duplicate {key}")


def _customers(rows) -> pd.DataFrame:
    """Usable customer rows by customer_id: the person and the state."""
    _first_of_each(rows, "customer_id")
    rows.set_aside(_blank(rows.frame["customer_unique_id"]), "missing customer_unique_id")
    return rows.used().set_index("customer_id")[["customer_unique_id", "customer_state"]]


def _sellers(rows) -> pd.DataFrame:
    _first_of_each(rows, "seller_id")
    return rows.used().set_index("seller_id")[["seller_city", "seller_state"]]


def _orders(rows, customers: pd.DataFrame, ledger: Ledger, file: str) -> pd.DataFrame:
    """Orders with a known customer and a readable purchase time: person, state, status, UTC time."""
    frame = rows.frame
    _first_of_each(rows, "order_id")
    rows.set_aside(~_among(frame["customer_id"], customers.index), "customer_id not in the customers file (or set aside there)")
    at, counts = local_to_utc(frame["order_purchase_timestamp"], ZONE)
    rows.set_aside(at.isna(), "order_purchase_timestamp missing or not a date and time")
    _note_times(ledger, file, "order_purchase_timestamp", counts)
    orders = frame.assign(occurred_at=at)[rows.kept].set_index("order_id")
    return orders.join(customers, on="customer_id")[["customer_id", "customer_unique_id", "customer_state",
                                                     "order_status", "occurred_at"]]


def _items(rows, orders: pd.DataFrame, sellers: pd.DataFrame, all_orders: pd.DataFrame) -> pd.DataFrame:
    """Items of usable orders and known sellers, with their value (price + freight_value)."""
    frame = rows.frame
    rows.set_aside(~_among(frame["order_id"], all_orders["order_id"]), "item of an order not in the orders file")
    rows.set_aside(~_among(frame["order_id"], orders.index), "item of an order set aside")
    rows.set_aside(_repeats(rows, ["order_id", "order_item_id"]), "duplicate (order_id, order_item_id)")
    rows.set_aside(~_among(frame["seller_id"], sellers.index), "item whose seller is not in the sellers file")
    price = pd.to_numeric(frame["price"].str.strip(), errors="coerce")
    freight = pd.to_numeric(frame["freight_value"].str.strip(), errors="coerce")
    good = price.notna() & freight.notna() & (price >= 0) & (freight >= 0) & (price + freight < float("inf"))
    rows.set_aside(~good, "price or freight_value missing, not a number or below 0")
    return frame.assign(value=price + freight)[rows.kept][["order_id", "seller_id", "product_id", "value"]]


def _orders_with_items(rows, orders, items, all_items, ledger: Ledger, file: str) -> pd.DataFrame:
    """The orders imported: the usable ones with at least one usable item; the report counts them by status."""
    frame = rows.frame
    rows.set_aside(~_among(frame["order_id"], all_items["order_id"]), "order without items")
    rows.set_aside(~_among(frame["order_id"], items["order_id"]), "order whose items were all set aside")
    for status, n in frame.loc[rows.kept, "order_status"].value_counts().sort_index().items():
        ledger.note(file, f"orders imported with order_status {status or '(blank)'}", n)
    for status, n in frame.loc[~rows.kept, "order_status"].value_counts().sort_index().items():
        ledger.note(file, f"orders set aside with order_status {status or '(blank)'}", n)
    return orders[_among(orders.index.to_series(), frame.loc[rows.kept, "order_id"]).to_numpy()]


def _categories(products, translation, sold: pd.DataFrame) -> pd.Series:
    """Category (in English where translated, else as given; "unknown" when none) by product_id."""
    english = pd.Series(dtype="str")
    if translation is not None:
        _first_of_each(translation, "product_category_name")
    if products is None:
        if translation is not None:
            translation.set_aside(translation.kept, "no products file: categories not used")
        return pd.Series(dtype="str")
    _first_of_each(products, "product_id")
    products.set_aside(~_among(products.frame["product_id"], sold["product_id"]), "product without items in these orders")
    used = products.used()
    named = used["product_category_name"].str.strip()
    if translation is not None:
        table = translation.used()
        english = pd.Series(table["product_category_name_english"].str.strip().to_numpy(),
                            index=table["product_category_name"].str.strip().to_numpy(), dtype="str")
        english = english[english != ""]
        translation.set_aside(~_among(translation.frame["product_category_name"].str.strip(), named),
                              "category without products in these orders")
    category = named.map(english).fillna(named).str.replace("_", " ").where(named != "", UNKNOWN_CATEGORY)
    return pd.Series(category.to_numpy(), index=used["product_id"].to_numpy(), dtype="str")  # "bed bath table"


def _locations(sellers: pd.DataFrame, sold: pd.DataFrame, categories: pd.Series) -> pd.DataFrame:
    """One location per seller with items: the readable unique name, the state, the main category."""
    by_category = sold.assign(category=sold["product_id"].map(categories).fillna(UNKNOWN_CATEGORY))
    value = by_category.groupby(["seller_id", "category"], as_index=False)["value"].sum()
    main = value.sort_values(["seller_id", "value", "category"], ascending=[True, False, True]).drop_duplicates("seller_id")
    located = sellers.loc[sorted(sold["seller_id"].unique())]
    ids = pd.Series(located.index, index=located.index)
    city = located["seller_city"].str.strip().str.title().str.replace(PARTICLES, lambda m: m.group(0).lower(), regex=True)
    prefix = (city + " seller ").where(city != "", "Seller ")
    width = MIN_SUFFIX
    while (prefix + ids.str[:width]).duplicated().any() and width < ids.str.len().max():
        width += 1
    return pd.DataFrame({"location_id": ids, "name": prefix + ids.str[:width],
                         "region": located["seller_state"].str.strip().replace("", None),
                         "format": ids.map(main.set_index("seller_id")["category"])}).reset_index(drop=True)


def _transactions(sold: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    per = sold.groupby(["order_id", "seller_id"], as_index=False, sort=True)["value"].sum()
    order = orders.loc[per["order_id"]]
    return pd.DataFrame({"transaction_id": per["order_id"] + "-" + per["seller_id"],
                         "customer_id": order["customer_unique_id"].to_numpy(), "location_id": per["seller_id"],
                         "occurred_at": order["occurred_at"].to_numpy(), "revenue": per["value"], "channel": CHANNEL})


def _persons(orders: pd.DataFrame, transactions: pd.DataFrame) -> pd.DataFrame:
    """One customer per person: the state of the latest order, the first purchase."""
    latest = orders.reset_index().sort_values(["customer_unique_id", "occurred_at", "order_id"]).drop_duplicates(
        "customer_unique_id", keep="last").set_index("customer_unique_id")
    first = transactions.groupby("customer_id")["occurred_at"].min()
    return pd.DataFrame({"customer_id": latest.index, "first_seen_on": first.reindex(latest.index).to_numpy(),
                         "segment": latest["customer_state"].str.strip().replace("", None).to_numpy()})


def _responses(rows, all_orders, all_items, orders, sold, ledger: Ledger, file: str) -> pd.DataFrame:
    """One CSAT response per (review_id, order_id) of an imported order, about its main seller."""
    frame = rows.frame
    rows.set_aside(_blank(frame["review_id"]) | _blank(frame["order_id"]), "missing review_id or order_id")
    rows.set_aside(~_among(frame["order_id"], all_orders["order_id"]), "review of an order not in the orders file")
    rows.set_aside(~_among(frame["order_id"], all_items["order_id"]), "review of an order without items")
    rows.set_aside(~_among(frame["order_id"], orders.index), "review of an order set aside")
    score = pd.to_numeric(frame["review_score"].str.strip(), errors="coerce")
    rows.set_aside(~score.isin([1, 2, 3, 4, 5]), "review_score missing or not a whole number 1-5")
    answered, answer_counts = local_to_utc(frame["review_answer_timestamp"], ZONE)
    created, created_counts = local_to_utc(frame["review_creation_date"], ZONE)
    at = answered.fillna(created)
    rows.set_aside(at.isna(), "neither review_answer_timestamp nor review_creation_date is a date and time")
    rows.set_aside(_repeats(rows, ["review_id", "order_id"]), "duplicate (review_id, order_id)")
    kept = rows.kept
    ledger.note(file, "responded_at from review_creation_date (no readable review_answer_timestamp)",
                (answered.isna() & kept).sum())
    _note_times(ledger, file, "review_answer_timestamp", answer_counts)
    _note_times(ledger, file, "review_creation_date", created_counts)
    used = frame[kept]
    ledger.note(file, "imported reviews whose review_id covers more than one order",
                used["review_id"].duplicated(keep=False).sum())
    ledger.note(file, "imported orders with more than one review", used["order_id"].value_counts().gt(1).sum())
    per_seller = sold.groupby(["order_id", "seller_id"], as_index=False)["value"].sum()
    main = per_seller.sort_values(["order_id", "value", "seller_id"], ascending=[True, False, True]).drop_duplicates(
        "order_id").set_index("order_id")["seller_id"]
    seller = used["order_id"].map(main)
    return pd.DataFrame({"response_id": used["review_id"] + "-" + used["order_id"], "location_id": seller,
                         "responded_at": at[kept], "customer_id": used["order_id"].map(orders["customer_unique_id"]),
                         "channel": CHANNEL, "csat": score[kept].astype("int64"),
                         "comment": _comment(used["review_comment_title"], used["review_comment_message"]),
                         "transaction_id": used["order_id"] + "-" + seller})


def _comment(title: pd.Series, message: pd.Series) -> pd.Series:
    """Title and message, stripped, on two lines; whichever is present alone; missing when both are empty."""
    title, message = title.str.strip(), message.str.strip()
    both = title + "\n" + message
    joined = both.where((title != "") & (message != ""), title + message)
    return joined.where(joined != "", None)


def _payments(rows, sold: pd.DataFrame, ledger: Ledger, file: str) -> None:
    """Payments are counted, not used; the report notes the imported orders whose payments differ from
    their items' price + freight by more than a cent."""
    rows.set_aside(rows.kept, "payments not imported: revenue is the items' price + freight_value")
    paid = pd.to_numeric(rows.frame["payment_value"].str.strip(), errors="coerce").groupby(rows.frame["order_id"]).sum()
    billed = sold.groupby("order_id")["value"].sum()
    differ = (paid.reindex(billed.index) - billed).abs() > 0.01
    ledger.note(file, "imported orders whose payments differ from price + freight by more than 0.01", differ.sum())


def _note_times(ledger: Ledger, file: str, column: str, counts: dict) -> None:
    ledger.note(file, f"{column}: local time in the hour repeated as summer time ended, read as the earlier instant",
                counts.get("ambiguous", 0))
    ledger.note(file, f"{column}: local time in the hour skipped as summer time began, moved on by the gap",
                counts.get("skipped", 0))
