"""Time-to-first-token and tokens/s: TransformersChatModel.stream vs plain `generate`.

    .venv/bin/python bench/llm_latency.py [--corpus ../shared/eval/covidqa_200423_docs]
        [--sizes 300 700 1400] [--max-tokens 64] [--reps 3] [--device auto] [--threads N]

Same RAG-style prompts (real passages, trimmed to each size) for both paths, greedy
decoding, one warm-up run of each path per prompt, then the median of `--reps` runs (the
two paths alternate). The plain baseline's TTFT is a `max_new_tokens=1` generate. Prints a
Markdown table and writes bench/results/llm_latency.json. On a small shared CPU box pass
`--threads 1`: oversubscribed OpenMP threads make timings swing by 10x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm.transformers_backend import TransformersChatModel  # noqa: E402
from llm.types import ChatMessage  # noqa: E402

SYSTEM = "Answer the question using only the numbered context passages. Cite them like [1]."
FALLBACK_PARAGRAPH = (
    "Coronaviruses are enveloped RNA viruses that infect birds and mammals. In humans they "
    "cause respiratory infections ranging from the common cold to severe pneumonia. The "
    "spike protein binds a receptor on the host cell, and antibodies against it can block "
    "infection. Surveillance, testing and isolation slow transmission in a population. "
)


def load_text(corpus: Path) -> tuple[str, str]:
    """Real passages (numbered blocks) and a real question, or a built-in fallback."""
    docs, queries = corpus / "corpus.jsonl", corpus / "queries.jsonl"
    if not docs.is_file():
        return FALLBACK_PARAGRAPH * 60, "How do antibodies prevent infection?"
    blocks = []
    with docs.open(encoding="utf-8") as f:
        for i, line in zip(range(1, 21), f, strict=False):
            blocks.append(f"[{i}] {json.loads(line)['text']}")
    question = "What is the main cause of HIV-1 infection in children?"
    if queries.is_file():
        with queries.open(encoding="utf-8") as f:
            question = json.loads(f.readline())["text"]
    return "\n\n".join(blocks), question


def build_prompt(
    model: TransformersChatModel, context: str, question: str, target: int
) -> list[ChatMessage]:
    """The longest prefix of `context` whose chat prompt has at most `target` tokens."""

    def messages(n: int) -> list[ChatMessage]:
        user = f"Context:\n{context[:n]}\n\nQuestion: {question}"
        return [ChatMessage("system", SYSTEM), ChatMessage("user", user)]

    lo, hi = 0, len(context)
    while lo < hi:  # binary search on characters
        mid = (lo + hi + 1) // 2
        if model.count_tokens(messages(mid)) <= target:
            lo = mid
        else:
            hi = mid - 1
    return messages(lo)


def measure(
    model: TransformersChatModel, msgs: list[ChatMessage], max_tokens: int, reps: int
) -> dict[str, Any]:
    """Raw runs and medians of both paths on one prompt."""
    runs: dict[str, list[float]] = {k: [] for k in ("s_ttft", "s_total", "p_ttft", "p_total")}
    tokens: dict[str, int] = {}
    # Warm-up: the first runs on a new prompt length are several times slower on CPU.
    "".join(model.stream(msgs, max_tokens=max_tokens))
    model.generate_plain(msgs, max_tokens)
    for _ in range(reps):
        text = "".join(model.stream(msgs, max_tokens=max_tokens))
        s = model.last_stats
        assert s is not None
        runs["s_ttft"].append(s.first_token_s)
        runs["s_total"].append(s.total_s)
        plain, p = model.generate_plain(msgs, max_tokens)
        runs["p_total"].append(p.total_s)
        runs["p_ttft"].append(model.generate_plain(msgs, 1)[1].total_s)
        tokens = {
            "prompt": s.prompt_tokens,
            "stream": s.completion_tokens,
            "plain": p.completion_tokens,
            "same_text": int(plain == text),
        }
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {"tokens": tokens, "runs": runs, "median": med}


def row(result: dict[str, Any]) -> str:
    """One Markdown table row."""
    t, m = result["tokens"], result["median"]
    s_tps, p_tps = t["stream"] / m["s_total"], t["plain"] / m["p_total"]
    s_dec = (t["stream"] - 1) / max(m["s_total"] - m["s_ttft"], 1e-9)
    p_dec = (t["plain"] - 1) / max(m["p_total"] - m["p_ttft"], 1e-9)
    result["derived"] = {
        "stream_tok_s": s_tps,
        "plain_tok_s": p_tps,
        "stream_decode_tok_s": s_dec,
        "plain_decode_tok_s": p_dec,
    }
    return (
        f"| {t['prompt']} | {t['stream']} / {t['plain']} | {m['s_ttft']:.3f} | {m['p_ttft']:.3f} "
        f"| {s_tps:.1f} | {p_tps:.1f} | {s_dec:.1f} | {p_dec:.1f} | {m['s_total']:.2f} "
        f"| {m['p_total']:.2f} | {'yes' if t['same_text'] else 'no'} |"
    )


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/eval/covidqa_200423_docs")
    ap.add_argument("--sizes", type=int, nargs="+", default=[300, 700, 1400])
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    args = ap.parse_args()
    import torch

    if args.threads:
        # On a small shared box, 2 OpenMP threads plus other load made plain generate
        # 10x slower (threads spin at barriers); 1 thread gives stable, comparable numbers.
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = TransformersChatModel(device=args.device)
    load_s = time.perf_counter() - t0
    context, question = load_text(args.corpus)
    results: list[dict[str, Any]] = []

    for size in args.sizes:
        msgs = build_prompt(model, context, question, size)
        results.append({"target_tokens": size, **measure(model, msgs, args.max_tokens, args.reps)})
    header = (
        "| prompt tok | completion tok (stream / plain) | TTFT stream s | TTFT plain s "
        "| tok/s stream | tok/s plain | decode tok/s stream | decode tok/s plain "
        "| total stream s | total plain s | same text |"
    )
    lines = [header, "|" + "---|" * 11] + [row(r) for r in results]
    summary = {
        "model": model.model_id,
        "device": model.device,
        "dtype": model.dtype,
        "load_s": round(load_s, 2),
        "max_tokens": args.max_tokens,
        "reps": args.reps,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": f"{platform.machine()} {platform.processor()}",
        "load_avg_after": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d"),
        "corpus": args.corpus.name if (args.corpus / "corpus.jsonl").is_file() else "built-in",
        "results": results,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "llm_latency.json").write_text(json.dumps(summary, indent=2))
    print(
        f"{model.model_id} on {model.device} ({summary['dtype']}), load {load_s:.1f} s, "
        f"max_tokens {args.max_tokens}, median of {args.reps}"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
