"""Words for the lexical index: jieba for Chinese runs (Traditional read as Simplified),
stemmed English words without function words, lower-cased word characters elsewhere, so
mixed-language text works chunk by chunk."""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

# Bump when the terms change: lexical indexes built with another version are rebuilt.
VERSION = 2

# Han ideographs (CJK Unified, Extension A, Compatibility).
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+")
_ENGLISH = re.compile(r"[a-z]+")
# English function words: they match almost every chunk, so they only add noise and
# index size (measured with bench/tune_retrieval.py; README "Retrieval tuning").
STOPWORDS = frozenset(
    "a an and are as at be but by can could did do does for from had has have how if in "  # noqa: SIM905
    "into is it its no not of on or should such than that the their then there these they "
    "this to was what when where which who whom why will with would".split()
)
_local = threading.local()


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _stemmer() -> Any:
    # Snowball stemmer objects are not thread-safe: one per thread.
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def _cut(run: str) -> list[str]:
    import rjieba

    return [w for w in rjieba.cut(_t2s().convert(run)) if w.strip()]


def _words(text: str, english: bool) -> list[str]:
    """Lower-cased words; English ones stemmed (Snowball) and function words dropped."""
    if not english:
        return _WORD.findall(text)
    words = [w for w in _WORD.findall(text) if w not in STOPWORDS]
    stem = _stemmer().stemWord
    return [stem(w) if _ENGLISH.fullmatch(w) else w for w in words]


def tokenize(text: str, *, english: bool = True) -> list[str]:
    """Index terms of `text`: Chinese words from jieba, other words lower-cased.

    `english=False` skips stemming and function words (version 1's terms; for comparisons).
    """
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    pos = 0
    for m in _HAN_RUN.finditer(text):
        out += _words(text[pos : m.start()], english)
        out += _cut(m.group())
        pos = m.end()
    out += _words(text[pos:], english)
    return out
