"""Keepa's vocabulary: the numbers and names its API is spoken in.

One module that the collector and the mock (`sim/keepa/`) both import, as
h11's client and server share its events, so the two cannot drift apart on
what a sort type, a csv index or an envelope field means. It holds constants
and nothing that acts. Sources: keepa-api.md §1 and Keepa's own structs
(keepacom/api_backend, ``structs/Product.java`` ``CsvType``, ``Deal.java``,
``DealRequest.java``, ``Response.java``).
"""

from __future__ import annotations

KEEPA_EPOCH_MINUTES = 21_564_000  # unix minutes of Keepa minute 0 (2011-01-01)
DOMAINS = (1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12)  # com, co.uk, de, fr, co.jp, ca, it, es, in, mx, br

# -- /deal -------------------------------------------------------------------------------
DEAL_PAGE_SIZE = 150  # deals per page at most; a shorter page is the last
DEAL_REACH = 10_000  # results a query reaches through paging, 150 a page
SORT_NEWEST, SORT_SALES_RANK = 1, 3  # 2: absolute drop, 4: drop in percent
DEAL_SORTS = (0, 1, 2, 3, 4, -2, -3, -4)  # 0: unset (sales rank); 1 is not invertible

# -- /product and /seller -------------------------------------------------------------
MAX_IDS = 100  # ASINs or seller ids one call takes at most

# -- csv types: the index of each history in Product.csv, and of each value in the
# arrays that use "Price Type indexing" (Stats.current, Deal.current, Deal.avg[i], ...)
CSV_TYPES = (
    "AMAZON", "NEW", "USED", "SALES", "LISTPRICE", "COLLECTIBLE", "REFURBISHED",
    "NEW_FBM_SHIPPING", "LIGHTNING_DEAL", "WAREHOUSE", "NEW_FBA", "COUNT_NEW", "COUNT_USED",
    "COUNT_REFURBISHED", "COUNT_COLLECTIBLE", "EXTRA_INFO_UPDATES", "RATING", "COUNT_REVIEWS",
    "BUY_BOX_SHIPPING", "USED_NEW_SHIPPING", "USED_VERY_GOOD_SHIPPING", "USED_GOOD_SHIPPING",
    "USED_ACCEPTABLE_SHIPPING", "COLLECTIBLE_NEW_SHIPPING", "COLLECTIBLE_VERY_GOOD_SHIPPING",
    "COLLECTIBLE_GOOD_SHIPPING", "COLLECTIBLE_ACCEPTABLE_SHIPPING", "REFURBISHED_SHIPPING",
    "EBAY_NEW_SHIPPING", "EBAY_USED_SHIPPING", "TRADE_IN", "RENT", "BUY_BOX_USED_SHIPPING",
    "PRIME_EXCL", "COUNT_NEW_FBA", "COUNT_NEW_FBM",
)
NEW, SALES = 1, 3
COUNT_NEW, RATING, COUNT_REVIEWS = 11, 16, 17
BUY_BOX_SHIPPING = 18  # a *_SHIPPING history holds (time, price, shipping) triples
# the price types a /deal selection may name in priceTypes (DealRequest.java)
DEAL_PRICE_TYPES = (0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 18, 19, 20, 21, 22, 32, 33)

# -- the envelope every answer carries (Response.java), in the order Keepa writes it
ENVELOPE_FIELDS = ("timestamp", "tokensLeft", "refillIn", "refillRate", "tokenFlowReduction",
                   "tokensConsumed", "processingTimeInMs")
