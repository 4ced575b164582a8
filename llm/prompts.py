"""Prompts: answering from numbered context blocks, and rewriting follow-up questions.

Kept short on purpose: the bundled model is a 135M SmolLM2, and long instructions hurt it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from llm.citations import extract_markers, strip_markers
from llm.grounding import is_cjk
from llm.types import ChatMessage, PromptTooLongError, Source

SYSTEM_PROMPT = (
    "Answer the question using only the numbered context blocks. "
    "After each claim, write the number of its block in square brackets, like [1] or [2]. "
    "Be concise. Answer in the language of the question. If the context does not contain "
    "the answer, say that you cannot find it in the documents."
)
CJK_INSTRUCTION = "请用中文回答，并在每句话后用方括号标出来源编号，例如 [1]。"
REWRITE_SYSTEM_PROMPT = (
    "Rewrite the follow-up question as one standalone question that makes sense without "
    'the conversation. Replace words like "it" or "they" with what they refer to. '
    "Reply with the question only."
)
MAX_HISTORY_MESSAGES = 4  # two exchanges: enough for a follow-up, cheap for a small window
REWRITE_TURN_CHARS = 300  # the subject of a follow-up is near the start of a turn
MAX_REWRITE_CHARS = 300
SUBJECT_ALLOWANCE = 100  # room for the subject a rewrite pulls in from the conversation
LONG_QUESTION_WORDS = 6

_LABEL = re.compile(
    r"^(?:(?:standalone|rewritten|rephrased|reformulated|new)\s+)?question\s*[:：]\s*"
    r"|^(?:独立问题|改写后的问题|改写|问题)\s*[:：]\s*",
    re.IGNORECASE,
)
_WRAPPERS = " \t\"'“”‘’「」*`"
_REFUSALS = ("i cannot", "i can't", "i can not", "i'm sorry", "sorry", "as an ai", "i don't")
_LEFTOVERS = ("user:", "assistant:", "conversation:", "follow-up question:")
_QUESTION_WORDS = frozenset(  # a word list reads better as one string
    "what who whom whose when where why how which is are was were do does did can "  # noqa: SIM905
    "could should would will has have had".split()
)
_CJK_QUESTION = re.compile(r"[吗呢谁哪几]|什么|怎|如何|为何|多少|是否")
_ANAPHORA = frozenset(  # a word list reads better as one string
    "it its itself they them their theirs this that these those he him his she "  # noqa: SIM905
    "her hers former latter same such".split()
)
_CJK_ANAPHORA = re.compile(r"[他她它这那其该此]|上述|前者|后者")
_ELLIPTICAL = re.compile(
    r"^(?:(?:and|but|also|so|what about|how about|what else)\b|还有|另外|而|又)"
)
_WORD = re.compile(r"[a-z0-9']+")
_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")


def format_source(s: Source) -> str:
    """One context block: `[1] report.pdf, p. 3–4 — Heading` then the chunk text."""
    header = f"[{s.index}] {s.filename}"
    if s.page_start is not None:
        same = s.page_end is None or s.page_end == s.page_start
        header += f", p. {s.page_start}" if same else f", p. {s.page_start}–{s.page_end}"
    if s.heading:
        header += f" — {s.heading}"
    return f"{header}\n{s.text.strip()}"


def build_messages(
    question: str,
    sources: Sequence[Source],
    history: Sequence[ChatMessage],
    *,
    count_tokens: Callable[[Sequence[ChatMessage]], int],
    budget: int,
    max_history: int = MAX_HISTORY_MESSAGES,
) -> tuple[list[ChatMessage], list[Source]]:
    """[system, recent history, context + question] within `budget` tokens, and the sources kept.

    `sources` come best first, numbered 1..n by the caller; `history` excludes `question`.
    Over budget, the lowest-ranked sources go first, down to the best one; then the oldest
    history exchanges; then the last source. Kept sources keep their `index`: dropping only
    the tail leaves the numbering dense, so no renumbering is needed.
    """
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    turns = _recent_history(history, max_history)
    kept = len(sources)
    while True:
        messages = [
            ChatMessage("system", SYSTEM_PROMPT),
            *turns,
            ChatMessage("user", _user_message(question, sources[:kept])),
        ]
        if count_tokens(messages) <= budget:
            return messages, list(sources[:kept])
        if kept > 1:
            kept -= 1
        elif turns:
            turns = _drop_oldest_exchange(turns)
        elif kept:
            kept = 0
        else:
            raise PromptTooLongError("The question is too long for the model's context window.")


def _user_message(question: str, sources: Sequence[Source]) -> str:
    """The context blocks followed by the question: small models attend best to the end."""
    context = "\n\n".join(format_source(s) for s in sources) if sources else "(no context)"
    ask = f"Question: {question.strip()}"
    if is_cjk(question):  # small models drift into English unless told in the language
        ask += f"\n{CJK_INSTRUCTION}"
    return f"Context:\n{context}\n\n{ask}"


def _recent_history(history: Sequence[ChatMessage], limit: int) -> list[ChatMessage]:
    """The last `limit` chat turns, starting with a user turn, old citation markers removed."""
    turns = [m for m in history if m.role in ("user", "assistant")][-limit:] if limit else []
    while turns and turns[0].role != "user":  # some chat templates require user-first
        turns = turns[1:]
    # Old markers number old sources; left in, they would be confused with the new blocks.
    return [ChatMessage(m.role, strip_markers(m.content).strip()) for m in turns]


def _drop_oldest_exchange(turns: list[ChatMessage]) -> list[ChatMessage]:
    """Remove the oldest user turn and the assistant replies that follow it."""
    rest = turns[1:]
    while rest and rest[0].role != "user":
        rest = rest[1:]
    return rest


def rewrite_prompt(history: Sequence[ChatMessage], question: str) -> list[ChatMessage]:
    """Messages asking the model to turn a follow-up into a standalone question."""
    lines = [
        f"{'User' if m.role == 'user' else 'Assistant'}: {_clip(m.content, REWRITE_TURN_CHARS)}"
        for m in _recent_history(history, MAX_HISTORY_MESSAGES)
    ]
    user = (
        "Conversation:\n"
        + "\n".join(lines)
        + f"\n\nFollow-up question: {question.strip()}\nStandalone question:"
    )
    return [ChatMessage("system", REWRITE_SYSTEM_PROMPT), ChatMessage("user", user)]


def _clip(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def clean_rewrite(text: str, fallback: str) -> str:
    """The rewritten question from the model's output, or `fallback` when it is unusable."""
    line = next((ln for ln in text.splitlines() if ln.strip(_WRAPPERS)), "")
    line = _LABEL.sub("", line.strip(_WRAPPERS), count=1).strip(_WRAPPERS)
    return line if _is_usable_rewrite(line, fallback.strip()) else fallback.strip()


def _is_usable_rewrite(line: str, original: str) -> bool:
    """Reject empty, overlong, refusing, answer-like or prompt-echoing output."""
    # 3x the original plus the pulled-in subject, capped at 300 (or the original, if longer)
    limit = min(3 * len(original) + SUBJECT_ALLOWANCE, max(MAX_REWRITE_CHARS, len(original)))
    if not line or len(line) > limit or extract_markers(line):
        return False
    lowered = line.lower()
    if lowered.startswith(_REFUSALS) or lowered.startswith(_LEFTOVERS):
        return False
    # An answer instead of a rewrite is a statement; an imperative original may stay imperative.
    return _is_question(line) or not _is_question(original)


def _is_question(text: str) -> bool:
    """Ends with a question mark, opens with a question word, or has a Chinese one."""
    words = _WORD.findall(text.lower())
    return (
        text.rstrip().endswith(("?", "？"))
        or (bool(words) and words[0] in _QUESTION_WORDS)
        or bool(_CJK_QUESTION.search(text))
    )


def needs_rewrite(question: str, history: Sequence[ChatMessage]) -> bool:
    """Whether a question may depend on the conversation, so is worth rewriting first.

    No prior turns: never. Otherwise yes, unless the question is long (at least
    LONG_QUESTION_WORDS words, counting two CJK characters as a word) and has no anaphora
    (it/its/they/this/that/those/..., 他/她/它/这/那/其/该/此...) and no elliptical opener
    ("and ...", "what about ...", "还有..."). Short questions ("why?", "and in 2019?") are
    elliptical even without a pronoun. False positives only cost one short generation.
    """
    if not any(m.role in ("user", "assistant") for m in history):
        return False
    lowered = question.strip().lower()
    words = _WORD.findall(lowered)
    length = len(words) + (len(_CJK_CHAR.findall(question)) + 1) // 2
    if length < LONG_QUESTION_WORDS:
        return True
    return bool(
        _ANAPHORA.intersection(words)
        or _CJK_ANAPHORA.search(question)
        or _ELLIPTICAL.match(lowered)
    )
