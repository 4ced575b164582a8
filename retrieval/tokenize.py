"""Words for the lexical index: jieba for Chinese runs (Traditional read as Simplified),
lower-cased word characters elsewhere, so mixed-language text works chunk by chunk."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

# Han ideographs (CJK Unified, Extension A, Compatibility).
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _cut(run: str) -> list[str]:
    import rjieba

    return [w for w in rjieba.cut(_t2s().convert(run)) if w.strip()]


def tokenize(text: str) -> list[str]:
    """Index terms of `text`: Chinese words from jieba, other words lower-cased."""
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    pos = 0
    for m in _HAN_RUN.finditer(text):
        out += _WORD.findall(text[pos : m.start()])
        out += _cut(m.group())
        pos = m.end()
    out += _WORD.findall(text[pos:])
    return out
