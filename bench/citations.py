"""Calibrate the citation support threshold on real answers from the bundled LLM.

    .venv/bin/python bench/citations.py [--n 120] [--seed 0]

Ingests the COVID-QA papers, answers N seeded questions with `ChatService` (the real answer
flow: retrieve, refuse or generate, verify citations), and labels every citation: does its
chunk contain a gold answer string (case-insensitive, whitespace-collapsed) and is it from a
gold document (qrels)? The raw model output is kept (the streamed deltas), so each candidate
threshold is evaluated by re-running `verify` exactly as the answer flow would, auto-cited
markers included. Questions are split 50/50 (seeded): the threshold maximising F1 of
"supported" predicting "chunk contains the gold answer" is chosen on the calibration half;
the report half gives citation precision, coverage, refusal rate, latency and tokens/s.
Prints Markdown tables and writes bench/results/citations.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import random
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.chat_service import ChatService  # noqa: E402
from bench.beir import EVAL, build_collection, doc_id, load_beir, prf, split_half  # noqa: E402
from data.scope import Scope  # noqa: E402
from llm.answer import Delta, Final, Unsupported  # noqa: E402
from llm.citations import DEFAULT_SUPPORT_THRESHOLD, verify  # noqa: E402
from llm.types import Source  # noqa: E402

GRID = [round(i * 0.05, 2) for i in range(21)]


@dataclass
class Answered:
    """One question's run: the raw model output and what it was given."""

    qid: str
    question: str
    answers: list[str]
    gold_docs: set[str]
    final: Final
    raw: str

    def has_answer(self, source: Source) -> bool:
        """Whether the source's chunk contains one of the gold answer strings."""
        text = _norm(source.text)
        return any(a and a in text for a in map(_norm, self.answers))

    def gold_doc(self, source: Source) -> bool:
        """Whether the source comes from a gold document."""
        return doc_id(source.filename) in self.gold_docs


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def run_questions(service: ChatService, queries: Sequence, qrels: dict) -> list[Answered]:
    """Answer every question through the service (collecting deltas = raw model output:
    `keep` mode passes the model's text on as generated)."""
    service.config = replace(service.config, unsupported=Unsupported.KEEP)
    out = []
    for i, (qid, question, answers) in enumerate(queries, 1):
        prepared = service.prepare(question, None, None)
        raw: list[str] = []
        final: Final | None = None
        for event in service.run(prepared):
            if isinstance(event, Delta):
                raw.append(event.text)
            elif isinstance(event, Final):
                final = event
        assert final is not None
        out.append(Answered(qid, question, answers, qrels.get(qid, set()), final, "".join(raw)))
        logging.info("%d/%d %.1fs refused=%s", i, len(queries), final.latency_s, final.refused)
    return out


def citations_at(items: Sequence[Answered], threshold: float) -> list[tuple[Answered, list]]:
    """Each answered (non-refused) item with its citations re-verified at `threshold`."""
    return [
        (a, verify(a.raw, a.final.sources, threshold=threshold)[1])
        for a in items
        if not a.final.refused
    ]


def metrics(items: Sequence[Answered], threshold: float) -> dict[str, float]:
    """Citation precision/recall/F1 vs gold-answer chunks, coverage and volume at `threshold`."""
    cited = citations_at(items, threshold)
    flat = [(a, c) for a, cs in cited for c in cs]
    m = prf([c.supported for _, c in flat], [a.has_answer(c.source) for a, c in flat])
    supported = [(a, c) for a, c in flat if c.supported]
    return {
        "threshold": threshold,
        "answers": len(cited),
        "citations": len(flat),
        "supported": len(supported),
        "citation_precision": m["precision"],
        "recall": m["recall"],
        "f1": m["f1"],
        "supported_from_gold_doc": _share([a.gold_doc(c.source) for a, c in supported]),
        "coverage": _share([any(c.supported for c in cs) for _, cs in cited]),
        "any_citation": _share([bool(cs) for _, cs in cited]),
    }


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def choose(items: Sequence[Answered]) -> float:
    """The grid threshold with the best F1 (ties: higher precision, then higher threshold)."""
    scored = [metrics(items, t) for t in GRID]
    return max(scored, key=lambda m: (m["f1"], m["citation_precision"], m["threshold"]))[
        "threshold"
    ]


def run_stats(items: Sequence[Answered]) -> dict[str, float]:
    """Refusal rate, latency and generation speed."""
    gen = [a.final for a in items if not a.final.refused and a.final.stats]
    tokens = sum(f.stats.completion_tokens for f in gen if f.stats)
    total = sum(f.stats.total_s for f in gen if f.stats)
    decode = sum(f.stats.total_s - f.stats.first_token_s for f in gen if f.stats)
    return {
        "questions": len(items),
        "refusal_rate": _share([a.final.refused for a in items]),
        "mean_latency_s": sum(a.final.latency_s for a in items) / max(1, len(items)),
        "mean_latency_answered_s": sum(f.latency_s for f in gen) / max(1, len(gen)),
        "mean_completion_tokens": tokens / max(1, len(gen)),
        "tokens_per_s": tokens / total if total else 0.0,
        "decode_tokens_per_s": tokens / decode if decode else 0.0,
        "length_capped": _share([f.finish_reason == "length" for f in gen]),
    }


def record(a: Answered) -> dict:
    """A JSON record of one answer and its citations (at the thresholds the flow ran with)."""
    return {
        "qid": a.qid,
        "question": a.question,
        "refused": a.final.refused,
        "answer": a.final.answer,
        "raw": a.raw,
        "latency_s": round(a.final.latency_s, 3),
        "completion_tokens": a.final.stats.completion_tokens if a.final.stats else None,
        "citations": [
            {
                "index": c.index,
                "chunk_id": c.source.chunk_id,
                "doc": doc_id(c.source.filename),
                "chunk_text": c.source.text,
                "support": round(c.support, 4),
                "supported": c.supported,
                "contains_answer": a.has_answer(c.source),
                "gold_doc": a.gold_doc(c.source),
            }
            for c in a.final.citations
        ],
    }


def print_tables(cal_rows: dict, rep_rows: dict, stats: dict, n: int) -> None:
    """Markdown: citation quality per threshold (report half) and the run's costs."""
    print(f"\n### Citations on the report half ({stats['questions']} of {n} questions)\n")
    print(
        "| threshold | value | answers | citations | supported | citation precision | "
        "recall | F1 | supported from gold doc | coverage | calib. F1 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, m in rep_rows.items():
        print(
            f"| {name} | {m['threshold']:.2f} | {m['answers']} | {m['citations']} | "
            f"{m['supported']} | {m['citation_precision']:.3f} | {m['recall']:.3f} | "
            f"{m['f1']:.3f} | {m['supported_from_gold_doc']:.3f} | {m['coverage']:.3f} | "
            f"{cal_rows[name]['f1']:.3f} |"
        )
    print("\n### Answer flow (report half)\n")
    print(
        "| refusal rate | mean latency s | mean latency answered s | mean tokens | "
        "tokens/s | decode tokens/s | hit max tokens |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {stats['refusal_rate']:.3f} | {stats['mean_latency_s']:.2f} | "
        f"{stats['mean_latency_answered_s']:.2f} | {stats['mean_completion_tokens']:.1f} | "
        f"{stats['tokens_per_s']:.1f} | {stats['decode_tokens_per_s']:.1f} | "
        f"{stats['length_capped']:.3f} |"
    )


def answer_all(corpus: Path, sample: Sequence, qrels: dict) -> tuple[list[Answered], float, float]:
    """Ingest into a throw-away home and answer the sample: (items, ingest s, answer s)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        container = build_collection(corpus, Path(tmp) / "home", with_llm=True)
        ingest_s = time.perf_counter() - start
        try:
            items = run_questions(ChatService(container, scope=Scope.everything()), sample, qrels)
        finally:
            container.close()
    return items, ingest_s, time.perf_counter() - start - ingest_s


def main() -> None:
    """Ingest, answer, calibrate, report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=EVAL / "covidqa_200423_docs")
    ap.add_argument("--n", type=int, default=120, help="questions to answer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "citations.json")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every answer")
    ap.add_argument(
        "--cache", type=Path, help="pickle of the answers: reused if present, else written"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    _, queries, qrels = load_beir(args.corpus)
    sample = random.Random(args.seed).sample(queries, min(args.n, len(queries)))
    if args.cache and args.cache.exists():
        items, ingest_s, answer_s = pickle.loads(args.cache.read_bytes())
    else:
        items, ingest_s, answer_s = answer_all(args.corpus, sample, qrels)
        if args.cache:
            args.cache.write_bytes(pickle.dumps((items, ingest_s, answer_s)))
    cal, rep = split_half(items, [False] * len(items), args.seed)
    chosen = choose(cal)
    thresholds = {"chosen (max F1 on calibration)": chosen}
    thresholds["DEFAULT_SUPPORT_THRESHOLD"] = DEFAULT_SUPPORT_THRESHOLD
    cal_rows = {name: metrics(cal, t) for name, t in thresholds.items()}
    rep_rows = {name: metrics(rep, t) for name, t in thresholds.items()}
    stats = run_stats(rep)
    print_tables(cal_rows, rep_rows, stats, len(items))
    print(f"\ningest {ingest_s:.0f} s (incl. model loads), answering {answer_s:.0f} s")
    result = {
        "command": "python " + " ".join([f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "n": len(items),
        "seed": args.seed,
        "criterion": "max F1 of supported vs chunk contains a gold answer string, "
        "calibration half, thresholds 0..1 step 0.05",
        "chosen_threshold": chosen,
        "default_threshold": DEFAULT_SUPPORT_THRESHOLD,
        "calibration": cal_rows,
        "calibration_curve": [metrics(cal, t) for t in GRID],
        "report": rep_rows,
        "report_flow": stats,
        "all_flow": run_stats(items),
        "ingest_s": round(ingest_s, 1),
        "answer_s": round(answer_s, 1),
        "date": time.strftime("%Y-%m-%d"),
        "answers": {"calibration": [record(a) for a in cal], "report": [record(a) for a in rep]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
