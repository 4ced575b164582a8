"""Answer quality, in one run, for every answer configuration on the same questions.

    .venv/bin/python bench/answers.py [--per-set 200] [--seed 0]

Sets: COVID-QA (English), CMRC 2018 (Simplified Chinese), SQuAD 2.0 sample (English, with
unanswerable questions), plus off-corpus questions (SQuAD on COVID-QA, DRCD on CMRC) for
refusal. The real bundled model generates once per question, greedily, from the prompt the
service builds; its text and per-token times are recorded, and each configuration replays
the same text through the real answer flow (so the configurations differ only in what
they do with it):

- raw: today's behaviour before verification (cosine-only refusal at 0.46, `keep`);
- drop / mark / keep: verified generation in each GROUNDED_ANSWER__UNSUPPORTED mode;
- extractive: GROUNDED_ANSWER__GENERATE=false (the evidence quotes, no LLM).

Per configuration: accuracy (answerable questions whose shown answer contains a gold
answer, markers and spaces ignored), invented numbers (answers showing a number no cited
quote states), citation coverage (shown sentences with a supported citation), refusal
precision/recall per language, and latency to the evidence event and to the first shown
text (p50/p95; the first text's time adds the recorded generation time). Then the mixed
collection (item 8): documents named by title, questions that name one. Writes
bench/results/answers.json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from api.chat_service import ChatService  # noqa: E402
from bench.beir import EVAL, load_beir, open_or_build  # noqa: E402
from bench.refusal import CACHE  # noqa: E402
from data.models import Chunk  # noqa: E402
from data.scope import Scope  # noqa: E402
from llm.answer import (  # noqa: E402
    REFUSAL,
    AnswerConfig,
    Delta,
    Evidence,
    Final,
    Unsupported,
    answer,
)
from llm.citations import strip_markers, verify  # noqa: E402
from llm.numbers import values  # noqa: E402
from llm.prompts import build_messages  # noqa: E402

SETS = {"covidqa": "covidqa_200423_docs", "cmrc": "cmrc2018_dev", "squad2": "squad2_dev_sample500"}
OFF = {"covidqa": "squad2_dev_sample500", "cmrc": "drcd_dev"}  # questions asked off-corpus
_NORM = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Cited:
    """A citation or evidence quote as the user sees it."""

    index: int
    supported: bool
    quote: str


@dataclass(frozen=True)
class Shown:
    """What one configuration showed for one question (kept to re-score without the LLM)."""

    answer: str
    refused: bool
    mode: str
    citations: list[Cited]
    evidence: list[Cited]

    @classmethod
    def of(cls, f: Final) -> Shown:
        def cited(cs: Sequence[Any]) -> list[Cited]:
            return [Cited(c.index, c.supported, c.quote) for c in cs]

        return cls(f.answer, f.refused, f.mode, cited(f.citations), cited(f.evidence))

    @classmethod
    def load(cls, d: dict[str, Any]) -> Shown:
        cs = {k: [Cited(**c) for c in d[k]] for k in ("citations", "evidence")}
        return cls(d["answer"], d["refused"], d["mode"], cs["citations"], cs["evidence"])


@dataclass
class Recording:
    """What the real model wrote for one question, with the time of each delta."""

    deltas: list[str]
    times: list[float]


class Replay:
    """A chat model that replays a recording (counting how much of it was consumed)."""

    def __init__(self, real: Any, recording: Recording) -> None:
        self.model_id = real.model_id
        self.context_window = real.context_window
        self.count_tokens = real.count_tokens
        self.recording = recording
        self.consumed = 0
        self.last_stats = None

    def stream(self, messages: Any, **_: Any) -> Iterator[str]:
        for delta in self.recording.deltas:
            self.consumed += 1
            yield delta


def record(service: ChatService, prepared: Any, question: str) -> Recording:
    """Generate with the real model from the prompt the flow would build."""
    model = service.model
    sources = service.retrieve(prepared, question).sources
    budget = model.context_window - service.config.max_answer_tokens
    messages, _ = build_messages(
        question, sources, [], count_tokens=model.count_tokens, budget=budget
    )
    start, deltas, times = time.perf_counter(), [], []
    for d in model.stream(messages, max_tokens=service.config.max_answer_tokens):
        deltas.append(d)
        times.append(time.perf_counter() - start)
    return Recording(deltas, times)


LEGACY_REFUSAL = 0.46
CONFIGS = {
    "raw": AnswerConfig(),  # not run through the flow: see raw()
    "drop": AnswerConfig(unsupported=Unsupported.DROP),
    "mark": AnswerConfig(unsupported=Unsupported.MARK),
    "keep": AnswerConfig(unsupported=Unsupported.KEEP),
    "extractive": AnswerConfig(generate=False),
}


def raw(service: ChatService, prepared: Any, question: str, rec: Recording) -> dict[str, Any]:
    """Today's behaviour before this change: cosine-only refusal at 0.46, the whole
    generated text shown, citations checked but not acted on, no repetition guard."""
    start = time.perf_counter()
    found = service.retrieve(prepared, question)
    took = time.perf_counter() - start
    if not found.sources or found.best_score < LEGACY_REFUSAL:
        final = Final(answer=REFUSAL, query=question, refused=True, mode="refused")
        return {"final": Shown.of(final), "t_evidence": None, "t_first": None}
    model = service.model
    budget = model.context_window - service.config.max_answer_tokens
    _, used = build_messages(
        question, found.sources, [], count_tokens=model.count_tokens, budget=budget
    )
    text, citations = verify("".join(rec.deltas), used)
    final = Final(answer=text, query=question, refused=False, citations=citations, sources=used)
    first = rec.times[0] + took if rec.times else None
    return {"final": Shown.of(final), "t_evidence": None, "t_first": first}


def replay(
    service: ChatService, prepared: Any, question: str, rec: Recording | None, config: AnswerConfig
) -> dict[str, Any]:
    """One configuration's answer for a question, with its latencies."""
    model = Replay(service.model, rec) if rec is not None else None
    start = time.perf_counter()
    t_evidence = t_first = None
    final: Final | None = None
    for event in answer(question, [], lambda q: service.retrieve(prepared, q), model, config):
        now = time.perf_counter() - start
        if isinstance(event, Evidence):
            t_evidence = now
        elif isinstance(event, Delta) and t_first is None:
            generated = rec.times[model.consumed - 1] if model and model.consumed else 0.0
            t_first = now + generated
        elif isinstance(event, Final):
            final = event
    assert final is not None
    return {"final": Shown.of(final), "t_evidence": t_evidence, "t_first": t_first}


def contains(text: str, golds: Sequence[str]) -> bool:
    """Whether a gold answer is in `text`, ignoring markers, case, spaces and punctuation."""
    shown = _NORM.sub("", strip_markers(text).lower())
    return any(g.strip() and _NORM.sub("", g.lower()) in shown for g in golds)


def shown_with_evidence(final: Shown) -> str:
    """What a user reads: the evidence quotes sent first, then the answer."""
    return " ".join([*(c.quote for c in final.evidence), final.answer])


def invented(final: Shown) -> bool:
    """Whether the answer shows a number that none of its cited quotes states."""
    if final.refused:
        return False
    stated = {v for c in final.citations for v, _ in values(c.quote)}
    return any(v not in stated for v, _ in values(strip_markers(final.answer)))


_MARKERS = re.compile(r"((?:[ \t]*[\[【]\d{1,3}(?:\s*[,，、]\s*\d{1,3})*[\]】])+)")


def coverage(final: Shown) -> list[bool]:
    """For each shown unit (text up to a run of citation markers, or trailing text without
    one), whether it carries the marker of a supported citation. "[note 1]" is no marker."""
    ok = {c.index for c in final.citations if c.supported}
    parts = _MARKERS.split(final.answer)
    out = []
    for i in range(0, len(parts), 2):
        markers = parts[i + 1] if i + 1 < len(parts) else ""
        if re.search(r"[^\W\d_]", parts[i]):
            out.append(bool({int(n) for n in re.findall(r"\d{1,3}", markers)} & ok))
    return out


def pct(xs: Sequence[float | None], q: float) -> float | None:
    vals = [x for x in xs if x is not None]
    return round(float(np.percentile(vals, q)), 3) if vals else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of one configuration over one set's rows."""
    answerable = [r for r in rows if r["golds"]]
    shown = [r for r in rows if not r["final"].refused]
    cov = [x for r in shown for x in coverage(r["final"])]
    refuse = [r for r in rows if not r["golds"]]
    tp = sum(r["final"].refused for r in refuse)
    fp = sum(r["final"].refused for r in answerable)
    return {
        "n": len(rows),
        "accuracy": round(np.mean([contains(r["final"].answer, r["golds"]) for r in answerable]), 3)
        if answerable
        else None,
        "accuracy_with_evidence": round(
            np.mean([contains(shown_with_evidence(r["final"]), r["golds"]) for r in answerable]), 3
        )
        if answerable
        else None,
        "invented_numbers": round(np.mean([invented(r["final"]) for r in shown]), 3)
        if shown
        else 0.0,
        "citation_coverage": round(float(np.mean(cov)), 3) if cov else None,
        "uncited_answers": sum(not any(c.supported for c in r["final"].citations) for r in shown),
        "refusal_precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "refusal_recall": round(tp / len(refuse), 3) if refuse else None,
        "answerable_refused": round(fp / len(answerable), 3) if answerable else None,
        "modes": {
            m: sum(r["final"].mode == m for r in rows)
            for m in ("generated", "extractive", "refused")
        },
        "evidence_p50": pct([r["t_evidence"] for r in rows], 50),
        "evidence_p95": pct([r["t_evidence"] for r in rows], 95),
        "first_text_p50": pct([r["t_first"] for r in rows], 50),
        "first_text_p95": pct([r["t_first"] for r in rows], 95),
    }


def run_set(name: str, n: int, seed: int, real_model: Any) -> dict[str, Any]:
    """Every configuration on one set (its questions, then off-corpus ones)."""
    folder = EVAL / SETS[name]
    _, queries, _ = load_beir(folder)
    rng = random.Random(seed)
    picked = rng.sample(queries, min(n, len(queries)))
    asked = [(q, a) for _, q, a in picked]
    if name in OFF:
        _, off, _ = load_beir(EVAL / OFF[name])
        asked += [(q, []) for _, q, a in rng.sample(off, min(n // 4, len(off))) if a]
    container = open_or_build(folder, CACHE / SETS[name])
    container.chat_model = real_model
    try:
        service = ChatService(container, scope=Scope.everything())
        prepared = service.prepare("probe", None, None)
        rows: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
        for i, (q, golds) in enumerate(asked):
            rec = record(service, prepared, q)
            for cname, config in CONFIGS.items():
                if cname == "raw":  # the recording too, to replay future checks on it
                    got = raw(service, prepared, q, rec) | {"recording": asdict(rec)}
                else:
                    got = replay(
                        service, prepared, q, None if cname == "extractive" else rec, config
                    )
                rows[cname].append({**got, "golds": golds, "q": q})
            print(f"  {name} {i + 1}/{len(asked)}", file=sys.stderr)
        with container.sessions() as s:
            chunks = s.scalar(select(func.count()).select_from(Chunk))
    finally:
        container.close()
    saved = {c: [r | {"final": asdict(r["final"])} for r in rs] for c, rs in rows.items()}
    (CACHE / f"rows-{name}.json").write_text(json.dumps(saved, ensure_ascii=False))
    return score_set(rows) | {"chunks": chunks}


def score_set(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each configuration's metrics over one set's rows, and a few examples."""
    n = len(rows["drop"])
    return {c: summarize(r) for c, r in rows.items()} | {
        "examples": [
            {
                "q": rows["drop"][i]["q"],
                "golds": rows["drop"][i]["golds"][:1],
                **{c: rows[c][i]["final"].answer[:300] for c in ("raw", "drop")},
            }
            for i in range(min(5, n))
        ],
    }


def replay_set(name: str, real_model: Any) -> dict[str, Any]:
    """Every verified configuration again, over the model text the last run recorded."""
    saved = json.loads((CACHE / f"rows-{name}.json").read_text())
    container = open_or_build(EVAL / SETS[name], CACHE / SETS[name])
    container.chat_model = real_model
    rows: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
    try:
        service = ChatService(container, scope=Scope.everything())
        prepared = service.prepare("probe", None, None)
        for old in saved["raw"]:
            rec = Recording(**old["recording"])
            rows["raw"].append(old | {"final": Shown.load(old["final"])})
            for cname, config in CONFIGS.items():
                if cname != "raw":
                    got = replay(
                        service, prepared, old["q"], None if cname == "extractive" else rec, config
                    )
                    rows[cname].append({**got, "golds": old["golds"], "q": old["q"]})
    finally:
        container.close()
    saved = {c: [r | {"final": asdict(r["final"])} for r in rs] for c, rs in rows.items()}
    (CACHE / f"rows-{name}.json").write_text(json.dumps(saved, ensure_ascii=False))
    return score_set(rows)


def rescore(name: str) -> dict[str, Any]:
    """A set's metrics from the rows its last run saved (no LLM)."""
    saved = json.loads((CACHE / f"rows-{name}.json").read_text())
    return score_set(
        {c: [r | {"final": Shown.load(r["final"])} for r in rs] for c, rs in saved.items()}
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-set", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default="covidqa,cmrc,squad2")
    ap.add_argument("--rescore", action="store_true", help="re-score the last run's answers")
    ap.add_argument(
        "--replay", action="store_true", help="re-run the answer flow on the last recordings"
    )
    args = ap.parse_args()
    from api.container import build_chat_model
    from api.settings import Settings

    out = ROOT / "bench" / "results" / "answers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.replay:  # the current answer flow over the saved recordings, no generation
        result = json.loads(out.read_text())
        from api.container import build_chat_model as _build
        from api.settings import Settings as _Settings

        model = _build(_Settings())  # type: ignore[call-arg]
        for name in args.sets.split(","):
            result[name] = replay_set(name, model) | {"chunks": result.get(name, {}).get("chunks")}
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        print_tables(result)
        return
    if args.rescore:  # new metrics over the saved answers, nothing generated again
        result = json.loads(out.read_text())
        result["named"] = named_documents_bench(args.seed)
        for name in args.sets.split(","):
            result[name] = rescore(name) | {"chunks": result.get(name, {}).get("chunks")}
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        print_tables(result)
        return
    real = build_chat_model(Settings())  # type: ignore[call-arg]
    result: dict[str, Any] = {}
    result["named"] = named_documents_bench(args.seed)
    result["evidence_latency"] = evidence_latency(args.seed)
    for name in args.sets.split(","):
        result[name] = run_set(name, args.per_set, args.seed, real)
        # Written after each set: a long run that is stopped keeps what it measured.
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    print_tables(result)


def print_tables(result: dict[str, Any]) -> None:
    """Markdown tables: one row per set and configuration."""
    cols = [
        "accuracy",
        "accuracy_with_evidence",
        "invented_numbers",
        "citation_coverage",
        "uncited_answers",
        "refusal_precision",
        "refusal_recall",
        "answerable_refused",
        "evidence_p50",
        "evidence_p95",
        "first_text_p50",
        "first_text_p95",
    ]
    print("| set | config | n | " + " | ".join(cols) + " | modes (gen/ext/ref) |")
    print("|---" * (len(cols) + 4) + "|")
    for name in SETS:
        for cname in CONFIGS:
            m = result.get(name, {}).get(cname)
            if m:
                modes = "/".join(str(m["modes"][k]) for k in ("generated", "extractive", "refused"))
                vals = " | ".join("–" if m[c] is None else str(m[c]) for c in cols)
                print(f"| {name} | {cname} | {m['n']} | {vals} | {modes} |")
    lat = result.get("evidence_latency")
    if lat:
        print(
            f"\nevidence event on {lat['chunks']} chunks, {lat['questions']} questions: "
            f"p50 {lat['p50']} s, p95 {lat['p95']} s"
        )
    named = result.get("named")
    if named:
        print(
            "\n| mixed collection | questions | top-1 from the named document "
            "| sources (top 5) from it | evidence from it |"
        )
        print("|---|---|---|---|---|")
        for k, v in named.items():
            print(
                f"| {k} | {v['n']} | {v['top1_named']} | {v.get('sources_named')} "
                f"| {v['evidence_named']} |"
            )


def evidence_latency(seed: int, n: int = 200) -> dict[str, Any]:
    """Time to the evidence event on one collection of every eval corpus (over 10k chunks)."""
    corpus: dict[str, tuple[str, str]] = {}
    questions: list[str] = []
    # Every eval corpus, and Cranfield's abstracts a second time under other names (the
    # stored vectors are reused), for a collection of over 10,000 chunks.
    for folder in ("cranfield", *SETS.values(), "drcd_dev", "cranfield"):
        docs, queries, _ = load_beir(EVAL / folder)
        prefix = f"{folder}-copy" if any(k.startswith(folder) for k in corpus) else folder
        corpus |= {f"{prefix}-{k}": v for k, v in docs.items()}
        questions += [q for _, q, _ in queries]
    container = open_or_build(corpus, CACHE / "all-corpora-11k")
    try:
        with container.sessions() as s:
            chunks = s.scalar(select(func.count()).select_from(Chunk))
        service = ChatService(container, scope=Scope.everything())
        prepared = service.prepare("probe", None, None)
        times = []
        config = AnswerConfig(generate=False)
        for q in random.Random(seed).sample(questions, n):
            start = time.perf_counter()
            for event in answer(q, [], lambda x: service.retrieve(prepared, x), None, config):
                if isinstance(event, Evidence | Final):
                    times.append(time.perf_counter() - start)
                    break
        return {"chunks": chunks, "questions": n, "p50": pct(times, 50), "p95": pct(times, 95)}
    finally:
        container.close()


def named_documents_bench(seed: int, docs: int = 40) -> dict[str, Any]:
    """Item 8: CMRC passages saved under their titles; questions that contain a title."""
    corpus, queries, qrels = load_beir(EVAL / "cmrc2018_dev")
    rng = random.Random(seed)
    titled = [(pid, t, x) for pid, (t, x) in corpus.items() if len(t) >= 2]
    rng.shuffle(titled)
    seen: set[str] = set()
    chosen = []
    for pid, title, text in titled:
        if title not in seen and "/" not in title:
            seen.add(title)
            chosen.append((pid, title, text))
        if len(chosen) == docs:
            break
    mixed = {title: ("", text) for _, title, text in chosen}
    by_pid = {pid: title for pid, title, _ in chosen}
    asked = [
        (q, by_pid[next(iter(qrels[qid]))])
        for qid, q, _ in queries
        if qrels.get(qid)
        and next(iter(qrels[qid])) in by_pid
        and by_pid[next(iter(qrels[qid]))] in q
    ]
    container = open_or_build(mixed, CACHE / f"mixed-cmrc-{docs}-{seed}")
    try:
        service = ChatService(container, scope=Scope.everything())
        prepared = service.prepare("probe", None, None)
        out: dict[str, Any] = {}
        for label, named_on in (("named document preferred", True), ("plain hybrid", False)):
            top1 = ev = 0
            share: list[float] = []
            for q, title in asked:
                found = service.retrieve(prepared, q, prefer_named=named_on)
                top1 += bool(found.sources) and found.sources[0].filename == f"{title}.txt"
                own = [s.filename == f"{title}.txt" for s in found.sources]
                share.append(sum(own) / len(own) if own else 0.0)
                quotes = [
                    e
                    for e in answer(
                        q, [], lambda _q, f=found: f, None, AnswerConfig(generate=False)
                    )
                    if isinstance(e, Evidence)
                ]
                first = quotes[0].quotes[:1] if quotes and quotes[0].quotes else []
                ev += bool(first) and first[0].source.filename == f"{title}.txt"
            out[label] = {
                "n": len(asked),
                "top1_named": round(top1 / max(1, len(asked)), 3),
                "evidence_named": round(ev / max(1, len(asked)), 3),
                # The chunks the model reads: from the named document, or others about it.
                "sources_named": round(float(np.mean(share)), 3) if share else None,
            }
        return out
    finally:
        container.close()


if __name__ == "__main__":
    main()
