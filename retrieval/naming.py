"""Which documents a question names: "IBM's revenue" in a collection of several 10-Ks.

A document is named when the question contains a distinctive word of its filename (Latin:
a whole word of at least three letters that is not generic, such as "annual" or "report";
CJK: a run of two or more characters), or its whole filename stem. A word found in the
names of more than a quarter of the documents is not distinctive, and a question that
matches more than `MAX_NAMED` documents names none of them: it is about a topic, not a
document.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import Collection, Document
from data.types import DocumentStatus

MAX_NAMED = 3
MAX_SHARE = 0.25
_GENERIC = frozenset(  # a word list reads better as one string
    "annual report reports form final draft copy version the and for inc corp ltd llc "  # noqa: SIM905
    "plc company group holdings document documents file files page pages part section "
    "chapter appendix notes note summary english chinese translation scan scanned new old "
    "txt pdf docx doc html htm md markdown text".split()
)
_LATIN_WORD = re.compile(r"[a-z][a-z0-9&]{2,}")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")
_SEPARATORS = re.compile(r"[\s_\-.]+")


def name_terms(filename: str) -> set[str]:
    """The words and CJK runs of a filename's stem (its folders left out) that can name it."""
    stem = PurePosixPath(filename).stem.lower()
    words = {w for w in _LATIN_WORD.findall(stem) if w not in _GENERIC and not w.isdigit()}
    return words | set(_CJK_RUN.findall(stem))


def _mentions(question: str, term: str) -> bool:
    if _CJK_RUN.fullmatch(term):
        return term in question
    return re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", question) is not None


def match(question: str, filenames: dict[int, str]) -> list[int]:
    """Ids of the documents (`{id: filename}`) that `question` names, at most MAX_NAMED."""
    lowered = question.lower()
    spaced = _SEPARATORS.sub(" ", lowered)
    terms = {i: name_terms(f) for i, f in filenames.items()}
    frequency = Counter(t for ts in terms.values() for t in ts)
    limit = max(1, int(len(filenames) * MAX_SHARE))
    named = []
    for doc_id, filename in filenames.items():
        stem = _SEPARATORS.sub(" ", PurePosixPath(filename).stem.lower()).strip()
        whole = len(stem) >= 3 and not stem.isdigit() and stem in spaced
        distinctive = [t for t in terms[doc_id] if frequency[t] <= limit]
        if whole or any(_mentions(lowered, t) for t in distinctive):
            named.append(doc_id)
    return named if len(named) <= MAX_NAMED else []


def named_documents(
    session: Session, collections: Sequence[Collection], question: str
) -> list[int]:
    """The indexed documents of `collections` that `question` names."""
    if not collections:
        return []
    rows = session.execute(
        select(Document.id, Document.filename).where(
            Document.collection_id.in_([c.id for c in collections]),
            Document.status == DocumentStatus.INDEXED.value,
        )
    ).all()
    if len(rows) < 2:  # one document: naming it changes nothing
        return []
    return match(question, {r.id: r.filename for r in rows})
