"""Spot a generation that has started to repeat itself, so it can be stopped early.

Small models fall into loops ("The answer is: ... The answer is: ..." until the token limit).
Two signals, checked on the text so far: a sentence equal to an earlier one (case and spaces
ignored), or one word n-gram (CJK: character n-gram) seen `MAX_REPEATS` times or more.
"""

from __future__ import annotations

import re
from collections import Counter

WORD_NGRAM = 4
CJK_NGRAM = 6
MAX_REPEATS = 3
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


def _normal(sentence: str) -> str:
    return " ".join(_WORD.findall(sentence.lower()))


def repeated_sentence(sentences: list[str]) -> bool:
    """Whether the last sentence repeats an earlier one."""
    if len(sentences) < 2:
        return False
    last = _normal(sentences[-1])
    return bool(last) and any(_normal(s) == last for s in sentences[:-1])


def looping(text: str) -> bool:
    """Whether some n-gram occurs MAX_REPEATS times or more in `text`."""
    cjk = "".join(_CJK.findall(text))
    if len(cjk) >= CJK_NGRAM * MAX_REPEATS:
        grams = Counter(cjk[i : i + CJK_NGRAM] for i in range(len(cjk) - CJK_NGRAM + 1))
        if grams.most_common(1)[0][1] >= MAX_REPEATS:
            return True
    words = _WORD.findall(text.lower())
    if len(words) < WORD_NGRAM * MAX_REPEATS:
        return False
    counts = Counter(tuple(words[i : i + WORD_NGRAM]) for i in range(len(words) - WORD_NGRAM + 1))
    return counts.most_common(1)[0][1] >= MAX_REPEATS
