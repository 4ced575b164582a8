"""Refuse, or not, before the LLM runs: a calibrated score of dense and lexical evidence.

score = cosine_weight × (best cosine among the candidates)
      + (1 − cosine_weight) × (share of the question's content words in the best source)

and the question is refused when the score is below the threshold. Dense similarity alone
fails across scripts: under the bundled English embedding model answerable Chinese questions
score 0.27-0.52, below the English threshold. So weights and threshold are calibrated
separately for Latin-script and CJK questions with `bench/refusal.py` (one split chosen,
the other reported; README "Refusal").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llm.grounding import coverage, is_cjk, question_tokens
from llm.types import Source


@dataclass(frozen=True)
class RefusalRule:
    """One script's rule: refuse when the weighted score is below `threshold`."""

    cosine_weight: float
    threshold: float

    def score(self, best_cosine: float, lexical: float) -> float:
        """The combined relevance score, in about [-1, 1]."""
        return self.cosine_weight * best_cosine + (1.0 - self.cosine_weight) * lexical


# Calibrated by bench/refusal.py (500 questions a group, seed 0, calibration half) for the
# bundled all-MiniLM-L6-v2; re-run it after configuring another embedding model. Under this
# English model CJK cosines carry no signal (answerable and off-corpus Chinese questions
# score alike), so the CJK rule is lexical only.
LATIN = RefusalRule(cosine_weight=0.5, threshold=0.492)
CJK = RefusalRule(cosine_weight=0.0, threshold=0.385)


@dataclass(frozen=True)
class RefusalPolicy:
    """The rule for each script; `threshold` overrides both thresholds when not None."""

    latin: RefusalRule = LATIN
    cjk: RefusalRule = CJK

    def rule(self, question: str) -> RefusalRule:
        """The rule for the question's script."""
        return self.cjk if is_cjk(question) else self.latin

    def with_threshold(self, threshold: float) -> RefusalPolicy:
        """The same weights with one threshold for both scripts (an operator's override)."""
        return RefusalPolicy(
            RefusalRule(self.latin.cosine_weight, threshold),
            RefusalRule(self.cjk.cosine_weight, threshold),
        )


def lexical_coverage(question: str, sources: Sequence[Source]) -> float:
    """The largest share of the question's content words that one source contains."""
    asked = question_tokens(question)
    return max((coverage(asked, f"{s.heading or ''} {s.text}") for s in sources), default=0.0)


def relevance(
    question: str, best_cosine: float, sources: Sequence[Source], policy: RefusalPolicy
) -> tuple[float, bool]:
    """(score, refuse) for a question and what retrieval found."""
    if not sources:
        return -1.0, True
    rule = policy.rule(question)
    score = rule.score(best_cosine, lexical_coverage(question, sources))
    return score, score < rule.threshold
