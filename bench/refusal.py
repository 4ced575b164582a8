"""Calibrate the refusal threshold: the best source's cosine score below which Grounded refuses.

    .venv/bin/python bench/refusal.py [--seed 0] [--top-k 5]

Refusal is decided on retrieval scores before the LLM runs, so no LLM is loaded. Two tests:

- off-corpus: a collection of the Cranfield abstracts; the 225 Cranfield queries should be
  answered, a seeded sample of as many COVID-QA questions should be refused;
- the hard case: SQuAD 2.0 (411 passages), whose unanswerable questions are on-topic.

Questions are split 50/50 (stratified, seeded) into calibration and report halves; thresholds
are chosen on calibration, and precision/recall/F1 of "refused" (positive = should refuse) are
reported on the report half. Prints Markdown tables and writes bench/results/refusal.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from api.chat_service import ChatService  # noqa: E402
from bench.beir import EVAL, build_collection, load_beir, prf, split_half  # noqa: E402
from llm.answer import DEFAULT_REFUSAL_THRESHOLD  # noqa: E402

# (question, top-1 score, should_refuse)
Item = tuple[str, float, bool]
PERCENTILES = (5, 10, 25, 50, 75, 90, 95)


def top_scores(folder: Path, questions: Sequence[str], home: Path, top_k: int) -> list[float]:
    """Ingest `folder`'s corpus into a fresh home; the score refusal uses, per question."""
    container = build_collection(folder, home)
    try:
        service = ChatService(container)
        prepared = service.prepare("probe", None, None, top_k=top_k)
        out = []
        for q in questions:
            found = service.retrieve(prepared, q)
            out.append(found.best_score if found.sources else -1.0)
        return out
    finally:
        container.close()


def candidates(scores: Sequence[float]) -> list[float]:
    """Thresholds between every pair of adjacent distinct scores, plus both ends."""
    s = sorted(set(scores))
    mids = [(a + b) / 2 for a, b in zip(s, s[1:], strict=False)]
    return [s[0] - 1e-6, *mids, s[-1] + 1e-6]


def evaluate(items: Sequence[Item], threshold: float) -> dict[str, float]:
    """P/R/F1 of refusing (score < threshold) against should_refuse."""
    return prf([score < threshold for _, score, _ in items], [y for _, _, y in items])


def best_f1(items: Sequence[Item]) -> float:
    """The threshold with the highest F1 (ties: higher precision, then the lower threshold)."""
    scored = [(evaluate(items, t), t) for t in candidates([s for _, s, _ in items])]
    return max(scored, key=lambda m: (m[0]["f1"], m[0]["precision"], -m[1]))[1]


def at_precision(items: Sequence[Item], target: float) -> float | None:
    """The highest-recall (highest) threshold whose precision is at least `target`, if any."""
    ok = [
        (m["recall"], t)
        for t in candidates([s for _, s, _ in items])
        if (m := evaluate(items, t))["precision"] >= target and m["tp"] > 0
    ]
    return max(ok)[1] if ok else None


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """Selected percentiles, mean and count."""
    arr = np.asarray(values, dtype=float)
    out = {f"p{p}": round(float(np.percentile(arr, p)), 4) for p in PERCENTILES}
    return {"n": len(values), "mean": round(float(arr.mean()), 4), **out}


def row(name: str, threshold: float, m: dict[str, float]) -> str:
    """A Markdown table row."""
    return (
        f"| {name} | {threshold:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | "
        f"{m['f1']:.3f} | {m['tp']} | {m['fp']} | {m['fn']} |"
    )


HEADER = (
    "| threshold | value | precision | recall | F1 | TP | FP | FN |\n"
    "|---|---|---|---|---|---|---|---|"
)


def off_corpus(tmp: Path, args: argparse.Namespace) -> tuple[list[Item], list[Item]]:
    """Cranfield queries (answer) and sampled COVID-QA questions (refuse), scored."""
    _, cran_q, _ = load_beir(args.in_corpus)
    _, covid_q, _ = load_beir(args.off_corpus)
    off = random.Random(args.seed).sample([q for _, q, _ in covid_q], len(cran_q))
    questions = [q for _, q, _ in cran_q] + off
    labels = [False] * len(cran_q) + [True] * len(off)
    scores = top_scores(args.in_corpus, questions, tmp / "cranfield", args.top_k)
    items = list(zip(questions, scores, labels, strict=True))
    return split_half(items, labels, args.seed)


def squad(tmp: Path, args: argparse.Namespace) -> tuple[list[Item], list[Item]]:
    """SQuAD 2.0 questions; the unanswerable ones (no answers) should be refused."""
    _, queries, _ = load_beir(args.hard)
    questions = [q for _, q, _ in queries]
    labels = [not answers for _, _, answers in queries]
    scores = top_scores(args.hard, questions, tmp / "squad2", args.top_k)
    items = list(zip(questions, scores, labels, strict=True))
    return split_half(items, labels, args.seed)


def distributions(items: Sequence[Item], answer: str, refuse: str) -> dict[str, dict]:
    """Score percentiles of the should-answer and should-refuse questions."""
    return {
        answer: percentiles([s for _, s, y in items if not y]),
        refuse: percentiles([s for _, s, y in items if y]),
    }


def main() -> None:
    """Score, calibrate, report; print the tables and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--in-corpus", type=Path, default=EVAL / "cranfield")
    ap.add_argument("--off-corpus", type=Path, default=EVAL / "covidqa_200423_docs")
    ap.add_argument("--hard", type=Path, default=EVAL / "squad2_dev_sample500")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--precision-target", type=float, default=0.95)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "refusal.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cal, rep = off_corpus(Path(tmp), args)
        sq_cal, sq_rep = squad(Path(tmp), args)
    chosen = best_f1(cal)
    strict = at_precision(cal, args.precision_target)
    sq_own = best_f1(sq_cal)
    default = DEFAULT_REFUSAL_THRESHOLD
    off_rows = {
        "chosen (max F1 on calibration)": (chosen, evaluate(rep, chosen)),
        "DEFAULT_REFUSAL_THRESHOLD": (default, evaluate(rep, default)),
    }
    if strict is not None:
        off_rows[f"highest with calibration precision >= {args.precision_target}"] = (
            strict,
            evaluate(rep, strict),
        )
    sq_rows = {
        "(a) chosen on off-corpus": (chosen, evaluate(sq_rep, chosen)),
        "(b) max F1 on squad2 calibration": (sq_own, evaluate(sq_rep, sq_own)),
        "DEFAULT_REFUSAL_THRESHOLD": (default, evaluate(sq_rep, default)),
    }
    print("\n### Off-corpus: Cranfield collection, Cranfield (answer) vs COVID-QA (refuse)")
    print(f"report half: {len(rep)} questions; calibration half: {len(cal)}\n")
    print(HEADER)
    for name, (t, m) in off_rows.items():
        print(row(name, t, m))
    print("\n### Hard case: SQuAD 2.0 sample, unanswerable (refuse) vs answerable")
    print(f"report half: {len(sq_rep)} questions; calibration half: {len(sq_cal)}\n")
    print(HEADER)
    for name, (t, m) in sq_rows.items():
        print(row(name, t, m))
    dist = {
        "off_corpus": distributions(cal + rep, "cranfield_in_corpus", "covidqa_off_corpus"),
        "squad2": distributions(sq_cal + sq_rep, "answerable", "unanswerable"),
    }
    print("\n### Top-1 cosine score percentiles (all questions)\n")
    print("| set | n | mean | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |")
    print("|---|---|---|" + "---|" * len(PERCENTILES))
    for groups in dist.values():
        for name, d in groups.items():
            cells = " | ".join(f"{d[f'p{p}']:.3f}" for p in PERCENTILES)
            print(f"| {name} | {d['n']} | {d['mean']:.3f} | {cells} |")
    wall = time.perf_counter() - start
    print(f"\nwall: {wall:.0f} s")
    result = {
        "command": "python " + " ".join([f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "seed": args.seed,
        "top_k": args.top_k,
        "chosen_threshold": round(chosen, 4),
        "threshold_at_precision": {
            "target": args.precision_target,
            "threshold": None if strict is None else round(strict, 4),
        },
        "squad2_own_threshold": round(sq_own, 4),
        "default_threshold": default,
        "off_corpus_report": _rounded(off_rows),
        "squad2_report": _rounded(sq_rows),
        "off_corpus_calibration_at_chosen": evaluate(cal, chosen),
        "score_percentiles": dist,
        "wall_s": round(wall, 1),
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float))


def _rounded(rows: dict[str, tuple[float, dict[str, float]]]) -> dict[str, dict]:
    return {
        name: {"threshold": round(t, 4), **{k: round(v, 4) for k, v in m.items()}}
        for name, (t, m) in rows.items()
    }


if __name__ == "__main__":
    main()
