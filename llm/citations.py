"""Check an answer's `[n]` citation markers against the sources they point to.

Markers: `[n]` and grouped `[n, m, ...]` (also with the Chinese comma `，`/`、` and full-width
brackets `【n】`, which small models emit in Chinese); `[1][2]` is simply two markers. Numbers
have 1-3 digits, so a year such as `[2019]` is not a marker. Ranges (`[1-3]`) and labels
(`[Source 1]`) are not recognised: the prompt asks for plain numbers.

Support measure, a lexical entailment proxy that works for English and Chinese alike: text is
tokenised into lowercased Latin/digit words (lightly stemmed: -ies/-ing/-ed/-es/-s, final -e)
and CJK character bigrams, and a small stopword set is dropped. The support of a claim by a
span is the fraction of the claim's distinct content tokens that occur in the span. It is
recall-oriented because the span should entail the claim, while it may well say more.
Candidate spans are windows of 1-3 consecutive sentences of the chunk; the best window (ties:
the shortest) gives the score and the quote. Lexical overlap misses paraphrases and negation
("is" vs "is not" over the same words): it is a cheap, explainable check, not an NLI model.

"Cite by evidence": tiny models often forget markers, so `verify` appends `[n]` to an unmarked
sentence when source n supports it at `auto_threshold` or above (a stricter bar than the one
that flags explicit citations).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence

from llm.types import Citation, Source

# Calibrated with `bench/citations.py`: max F1 of `supported` predicting "the cited chunk
# contains the gold answer" on one half of 120 COVID-QA questions (0.55), reported on the
# other half (citation precision 0.464, coverage 0.456 with the bundled 135M model).
DEFAULT_SUPPORT_THRESHOLD = 0.55
# Adding a citation the model did not write needs stronger evidence than checking one it did.
AUTO_CITE_MARGIN = 0.2
WINDOW_SENTENCES = 3

_NUM_SEP = re.compile(r"\s*[,，、]\s*")
_MARKER = re.compile(r"[\[【]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]】]")
# A run of adjacent markers with the spaces around it, rewritten as one unit (see _rewrite).
_MARKER_RUN = re.compile(
    rf"(?P<lead>[ \t]*)(?P<run>{_MARKER.pattern}(?:[ \t]*{_MARKER.pattern})*)(?P<trail>[ \t]*)"
)
_CLOSERS = "\"'”’」』)）"
_BREAK = re.compile(
    rf"(?P<term>[.!?]+|[。！？…]+)[{_CLOSERS}]*(?:[ \t]*{_MARKER.pattern})*"
    r"|(?P<para>\n[ \t]*\n\s*)"
    r"|(?P<item>\n(?=[ \t]*(?:[-*•]|\d{1,3}[.)])[ \t]))"
)
_TAIL = re.compile(rf"(?:[.!?]+|[。！？…]+)[{_CLOSERS}]*$")
_ABBREVIATIONS = frozenset(  # a word list reads better as one string
    "al approx cf dr eg etc fig ie inc jr ltd mr mrs ms pp prof sr st vs".split()  # noqa: SIM905
)
_INITIALS = re.compile(r"(?:[a-z]\.)*[a-z]")  # "J. Smith", "e.g.", "U.S."
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_STOPWORDS = frozenset(  # a word list reads better as one string
    "a an the and or but if of to in on at by for with from as into about than "  # noqa: SIM905
    "then so is are was were be been being am do does did has have had will would "
    "can could should may might must shall it its this that these those there "
    "here which who whom whose what i you he she we they me him her us them my "
    "your his our their also very just".split()
)
# A CJK bigram made only of these function characters carries no content.
_CJK_STOP = frozenset("的了是在和与也就都而及或把被之其着过吗呢吧啊")

Windows = list[tuple[frozenset[str], int, int]]


def extract_markers(answer: str) -> list[tuple[int, int, int]]:
    """(number, start, end) of every marker; a group `[1, 2]` yields one entry per number."""
    return [
        (int(number), m.start(), m.end())
        for m in _MARKER.finditer(answer)
        for number in _NUM_SEP.split(m.group(1))
    ]


def strip_markers(text: str) -> str:
    """`text` without any citation markers."""
    return _rewrite(text, lambda _number: False)


def _rewrite(text: str, keep: Callable[[int], bool]) -> str:
    """Drop the marker numbers `keep` rejects, tidying the spaces a removed marker leaves."""

    def replace(m: re.Match[str]) -> str:
        groups = [[int(n) for n in _NUM_SEP.split(g)] for g in _MARKER.findall(m["run"])]
        kept = [[n for n in numbers if keep(n)] for numbers in groups]
        if kept == groups:
            return m.group(0)
        run = "".join("[" + ", ".join(map(str, ns)) + "]" for ns in kept if ns)
        if run:
            return m["lead"] + run + m["trail"]
        # "claim [7]." -> "claim."; at a line start the following spaces go too.
        at_line_start = m.start() == 0 or text[m.start() - 1] == "\n"
        return "" if at_line_start else m["trail"]

    return _MARKER_RUN.sub(replace, text)


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of sentences, whitespace trimmed; markers after a stop stay with it."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BREAK.finditer(text):
        if m["term"] is not None and not _is_sentence_end(text, m):
            continue
        end = m.end() if m["term"] is not None else m.start()
        _add_trimmed(spans, text, start, end)
        start = m.end()
    _add_trimmed(spans, text, start, len(text))
    return spans


def _is_sentence_end(text: str, m: re.Match[str]) -> bool:
    """Whether a stop ends a sentence: not inside "3.14", "e.g. x" or "J. Smith"."""
    if m["term"][0] in "。！？…":
        return True
    if m.end() < len(text) and not text[m.end()].isspace():
        return False
    if m["term"] != ".":
        return True
    stop = m.start("term")
    word = re.search(r"\S*$", text[max(0, stop - 40) : stop])  # bounded: no quadratic scans
    before = word.group(0).lower().lstrip("(\"'") if word else ""
    if before in _ABBREVIATIONS or _INITIALS.fullmatch(before):
        return False
    following = text[m.end() :].lstrip()
    return not (following[:1].islower())


def _add_trimmed(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    """Append text[start:end] without surrounding whitespace, unless it is blank."""
    chunk = text[start:end]
    stripped = chunk.strip()
    if stripped:
        lead = len(chunk) - len(chunk.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))


def tokens(text: str) -> frozenset[str]:
    """Content tokens: stemmed lowercase words and CJK character bigrams, stopwords dropped."""
    out: set[str] = set()
    for run in _TOKEN.findall(text.lower()):
        if _CJK_CHAR.match(run):
            grams = [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
            out.update(g for g in grams if not set(g) <= _CJK_STOP)
        elif run not in _STOPWORDS:
            out.add(_stem(run))
    return frozenset(out)


def _stem(word: str) -> str:
    """Light suffix stripping so "supports", "supported" and "supporting" match."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 2:
            word = word[: -len(suffix)] + replacement
            break
    # "use"/"used"/"using" all become "us"
    return word[:-1] if word.endswith("e") and len(word) >= 3 else word


def span_windows(text: str) -> Windows:
    """Token sets of every window of 1-3 consecutive sentences, with its character span."""
    spans = sentences(text)
    per_sentence = [tokens(text[s:e]) for s, e in spans]
    windows: Windows = []
    for i, (start, _) in enumerate(spans):
        acc: frozenset[str] = frozenset()
        for j in range(i, min(i + WINDOW_SENTENCES, len(spans))):
            acc |= per_sentence[j]
            windows.append((acc, start, spans[j][1]))
    return windows


MIN_CLAIM_TOKENS = 3


def best_support(claim: frozenset[str], windows: Windows) -> tuple[float, int, int]:
    """(score, start, end) of the window covering most of `claim`; (0.0, 0, 0) if none does."""
    best = (0.0, 0, 0)
    if not claim:
        return best
    # A claim of one or two content words ("1 [1]") proves little even when found: its
    # score is scaled down so it needs company to count as supported.
    weight = min(1.0, len(claim) / MIN_CLAIM_TOKENS)
    for window, start, end in windows:
        score = weight * len(claim & window) / len(claim)
        if score > best[0] or (score == best[0] > 0 and end - start < best[2] - best[1]):
            best = (score, start, end)
    return best


def support(claim: str, text: str) -> tuple[float, int, int]:
    """How well the best 1-3 sentence span of `text` supports `claim`, and that span."""
    return best_support(tokens(strip_markers(claim)), span_windows(text))


def verify(
    answer: str,
    sources: Sequence[Source],
    *,
    threshold: float = DEFAULT_SUPPORT_THRESHOLD,
    auto_threshold: float | None = None,
) -> tuple[str, list[Citation]]:
    """Drop markers to unknown sources, check the rest, cite unmarked but supported sentences."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    auto = min(1.0, threshold + AUTO_CITE_MARGIN) if auto_threshold is None else auto_threshold
    by_index = {s.index: s for s in sources}
    windows = {s.index: span_windows(s.text) for s in sources}
    text = _rewrite(answer, lambda number: number in by_index)
    spans = sentences(text)
    claims = [tokens(strip_markers(text[s:e])) for s, e in spans]
    best: dict[int, Citation] = {}
    marked: set[int] = set()
    starts = [s for s, _ in spans]
    for number, start, _ in extract_markers(text):
        i = bisect_right(starts, start) - 1
        # A marker alone on its own line backs the sentence before it.
        i = i - 1 if not claims[i] and i > 0 else i
        marked.add(i)
        _keep_best(best, _cite(by_index[number], claims[i], windows[number], threshold))
    inserts: list[tuple[int, int]] = []
    for i, claim in enumerate(claims):
        if i in marked or not claim:
            continue
        found = [_cite(s, claim, windows[s.index], threshold) for s in sources]
        top = max(found, key=lambda c: c.support, default=None)  # ties: the higher-ranked
        if top is not None and top.support >= auto:
            inserts.append((i, top.index))
            _keep_best(best, top)
    return _insert_markers(text, spans, inserts), sorted(best.values(), key=lambda c: c.index)


def _cite(source: Source, claim: frozenset[str], windows: Windows, threshold: float) -> Citation:
    """The citation of `source` for a claim, quoting its best-supporting span."""
    score, start, end = best_support(claim, windows)
    return quote_citation(source, start, end, score, score >= threshold)


def quote_citation(source: Source, start: int, end: int, score: float, supported: bool) -> Citation:
    """A citation of `source` quoting `source.text[start:end]`."""
    return Citation(
        index=source.index,
        source=source,
        quote=source.text[start:end],
        quote_start=start,
        quote_end=end,
        support=score,
        supported=supported,
    )


def _keep_best(best: dict[int, Citation], citation: Citation) -> None:
    """Keep one citation per source index: the best-supported one."""
    current = best.get(citation.index)
    if current is None or citation.support > current.support:
        best[citation.index] = citation


def _insert_markers(text: str, spans: list[tuple[int, int]], inserts: list[tuple[int, int]]) -> str:
    """Put `[n]` before each chosen sentence's final stop ("claim [2].", "主张[2]。")."""
    for i, number in sorted(inserts, reverse=True):  # back to front keeps offsets valid
        start, end = spans[i]
        tail = _TAIL.search(text[start:end])
        at = end - len(tail.group(0)) if tail else end
        marker = f"[{number}]" if _CJK_CHAR.match(text[at - 1]) else f" [{number}]"
        text = text[:at] + marker + text[at:]
    return text
