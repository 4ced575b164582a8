"""Numbers, amounts, percentages and dates in text, normalised so equal values compare equal.

"1,234" and "1234" are one value; "1.2 billion", "1,200 million" and "1.2bn" are 1.2e9;
"16.5%" is the percentage 16.5; Chinese "3.5亿" is
3.5e8 and "12万" 120000. A date's parts are numbers too ("31 March 2020" holds 31 and 2020),
so a claim's date matches only a span that states the same day and year. Citation markers
(`[2]`) must be removed before calling `values`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SCALES = {
    "thousand": 3,
    "k": 3,
    "million": 6,
    "mn": 6,
    "m": 6,
    "billion": 9,
    "bn": 9,
    "b": 9,
    "trillion": 12,
    "tn": 12,
    "万": 4,
    "亿": 8,
    "千": 3,
    "百万": 6,
    "千万": 7,
    "万亿": 12,
}
# A number: digits with thousands separators or a decimal part, then an optional scale word
# (whole word for Latin ones) and an optional percent sign.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s*(?P<cjk>万亿|百万|千万|万|亿|千)|\s?(?P<scale>thousand|million|billion|trillion|mn|bn|tn|k|m|b)\b)?"
    r"\s*(?P<pct>%|％|percent\b|per cent\b)?",
    re.IGNORECASE,
)
Value = tuple[Decimal, bool]  # (normalised value, is a percentage)


def values(text: str) -> set[Value]:
    """Every number in `text` as (value, is_percentage), scales applied."""
    out: set[Value] = set()
    for m in _NUMBER.finditer(text):
        try:
            number = Decimal(m["num"].replace(",", ""))
        except InvalidOperation:  # pragma: no cover - the pattern only matches digits
            continue
        scale = (m["cjk"] or m["scale"] or "").lower()
        if scale:
            number = number.scaleb(_SCALES[scale])
        out.add((number.normalize(), m["pct"] is not None))
    return out


def unmatched(claim: str, span: str) -> set[Value]:
    """The values of `claim` that `span` does not state (empty: every number is backed).

    Values match whatever their percent sign: a table states "16.5" under a "%" header.
    """
    need = values(claim)
    if not need:
        return set()
    have = {v for v, _ in values(span)}
    return {(v, pct) for v, pct in need if v not in have}
