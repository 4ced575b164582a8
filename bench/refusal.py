"""Calibrate refusal: per script, the weight of cosine vs lexical coverage and the threshold.

    .venv/bin/python bench/refusal.py [--seed 0] [--per-group 300]

Refusal is decided on retrieval before the LLM runs (llm/refusal.py), so no LLM is loaded.
score = w × best cosine + (1 − w) × the share of the question's content words in the best
source. Groups (each question: should it be answered?):

- Latin script: COVID-QA questions on the COVID-QA collection and SQuAD 2.0 answerable
  questions on the SQuAD collection (answer); each set's questions asked of the other
  collection (off-corpus: refuse); SQuAD 2.0 unanswerable questions (on-topic: refuse).
- CJK: CMRC 2018 questions on the CMRC collection (answer); DRCD (Traditional Chinese, other
  Wikipedia articles) questions on the CMRC collection (off-corpus: refuse).

Each group is split 50/50 (seeded). On the calibration half, for each w in 0, 0.1, ..., 1 the
threshold is the 3rd percentile of answerable scores (at most 5% of answerable questions
refused, with a margin for the other half); the w that refuses most off-corpus questions
wins. Both are reported on the other
half. Prints Markdown tables and writes bench/results/refusal.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from api.chat_service import ChatService  # noqa: E402
from bench.beir import EVAL, load_beir, open_or_build, split_half  # noqa: E402
from data.scope import Scope  # noqa: E402
from llm.refusal import RefusalPolicy, RefusalRule, lexical_coverage  # noqa: E402

CACHE = ROOT / "var" / "bench-cache" / "answers"
PERCENTILE = 3
TIE = 0.02
# (question, best cosine, coverage, should refuse, group)
Scored = tuple[str, float, float, bool, str]


def questions(name: str, answerable: bool | None, n: int, seed: int) -> list[str]:
    """Up to `n` seeded questions of a set (only (un)answerable ones when asked)."""
    _, queries, _ = load_beir(EVAL / name)
    picked = [q for _, q, a in queries if answerable is None or bool(a) == answerable]
    random.Random(seed).shuffle(picked)
    return picked[:n]


def score(collection: str, qs: list[str], refuse: bool, group: str) -> list[Scored]:
    """(cosine, coverage) of each question against a cached collection."""
    container = open_or_build(EVAL / collection, CACHE / collection)
    try:
        service = ChatService(container, scope=Scope.everything())
        prepared = service.prepare("probe", None, None)
        out = []
        for q in qs:
            found = service.retrieve(prepared, q)
            cov = lexical_coverage(q, found.sources)
            out.append((q, found.best_score if found.sources else -1.0, cov, refuse, group))
        return out
    finally:
        container.close()


def groups(n: int, seed: int) -> dict[str, list[Scored]]:
    """Every scored question, by script."""
    covid = questions("covidqa_200423_docs", None, n, seed)
    squad = questions("squad2_dev_sample500", True, n, seed)
    latin = (
        score("covidqa_200423_docs", covid, False, "covid answerable")
        + score("squad2_dev_sample500", squad, False, "squad answerable")
        + score("covidqa_200423_docs", squad, True, "off-corpus (squad on covid)")
        + score("squad2_dev_sample500", covid, True, "off-corpus (covid on squad)")
        + score(
            "squad2_dev_sample500",
            questions("squad2_dev_sample500", False, n, seed),
            True,
            "squad unanswerable",
        )
    )
    cjk = score("cmrc2018_dev", questions("cmrc2018_dev", None, n, seed), False, "cmrc answerable")
    cjk += score("cmrc2018_dev", questions("drcd_dev", None, n, seed), True, "off-corpus (drcd)")
    return {"latin": latin, "cjk": cjk}


def fit(items: list[Scored], off: str) -> RefusalRule:
    """The rule refusing most `off` questions while refusing ≤ 3% of answerable ones.

    Among weights within `TIE` of the best off-corpus recall, the one leaning least on the
    cosine wins: under the English embedding model CJK cosines are noise that a small
    calibration half can seem to like.
    """
    answerable = [it for it in items if not it[3]]
    offs = [it for it in items if it[4].startswith(off)]
    found: list[tuple[float, RefusalRule]] = []
    for w in np.linspace(0, 1, 11):
        rule = RefusalRule(round(float(w), 2), 0.0)
        scores = [rule.score(c, v) for _, c, v, _, _ in answerable]
        rule = RefusalRule(
            rule.cosine_weight, round(float(np.percentile(scores, PERCENTILE, method="lower")), 3)
        )
        found.append(
            (float(np.mean([rule.score(c, v) < rule.threshold for _, c, v, _, _ in offs])), rule)
        )
    best = max(recall for recall, _ in found)
    return next(rule for recall, rule in found if recall >= best - TIE)


def report(items: list[Scored], rule: RefusalRule) -> dict[str, float]:
    """Share refused in each group, and over all answerable and all off-corpus questions."""
    pools = {g: [it for it in items if it[4] == g] for g in dict.fromkeys(it[4] for it in items)}
    pools["all answerable"] = [it for it in items if not it[3]]
    pools["all off-corpus"] = [it for it in items if it[4].startswith("off-corpus")]
    return {
        g: float(np.mean([rule.score(c, v) < rule.threshold for _, c, v, _, _ in sel]))
        for g, sel in pools.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-group", type=int, default=300)
    ap.add_argument("--rescore", action="store_true", help="reuse the last run's scores")
    args = ap.parse_args()
    result: dict[str, object] = {}
    defaults = RefusalPolicy()
    legacy = RefusalRule(1.0, 0.46)  # the cosine-only threshold before this change
    print("| script | rule | group | refused (report half) |\n|---|---|---|---|")
    cached = CACHE / "refusal-scored.json"
    if args.rescore and cached.exists():
        scored = json.loads(cached.read_text())
    else:
        scored = groups(args.per_group, args.seed)
        cached.write_text(json.dumps(scored, ensure_ascii=False))
    for script, items in scored.items():
        calib, rep = split_half(items, [it[3] for it in items], args.seed)
        chosen = fit(calib, "off-corpus")
        default = defaults.cjk if script == "cjk" else defaults.latin
        rules = {"cosine only (0.46)": legacy, "calibrated now": chosen, "shipped default": default}
        result[script] = {
            name: {"rule": rule.__dict__, "refused": report(rep, rule)}
            for name, rule in rules.items()
        }
        for name, rule in rules.items():
            label = f"w={rule.cosine_weight} t={rule.threshold}"
            for g, share in report(rep, rule).items():
                print(f"| {script} | {name}: {label} | {g} | {share:.3f} |")
    out = ROOT / "bench" / "results" / "refusal.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
