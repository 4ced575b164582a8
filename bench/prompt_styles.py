"""Issue 13's untried lever: does a "quote the sentence" prompt make verified answers right?

    .venv/bin/python bench/prompt_styles.py [--per-set 20] [--sets covidqa,cmrc]

For the same questions, the real bundled model generates once under each system prompt
(today's, and one asking it to copy the answering sentence). Each recording is replayed
through the real answer flow in `drop` mode, so the prompts differ only in what the model
wrote. Prints one table: accuracy of the shown answer, share of answers shown as generated
text (not the extractive fallback), mean generated tokens, generation seconds p50.
Writes bench/results/prompt_styles.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import llm.prompts as prompts  # noqa: E402
from api.chat_service import ChatService  # noqa: E402
from bench.answers import CONFIGS, SETS, contains, record, replay  # noqa: E402
from bench.beir import EVAL, load_beir, open_or_build  # noqa: E402
from bench.refusal import CACHE  # noqa: E402

STYLES = {
    "free": prompts.SYSTEM_PROMPT,
    "quote": (
        "Answer the question by copying, word for word, the one sentence of the numbered "
        "context blocks that answers it, then the number of its block in square brackets, "
        "like [1]. Write nothing else. If no block answers it, say that you cannot find it "
        "in the documents."
    ),
}


def run(name: str, n: int, seed: int, model: Any) -> dict[str, Any]:
    """Both prompt styles on one set's questions, replayed in drop mode."""
    folder = EVAL / SETS[name]
    _, queries, _ = load_beir(folder)
    picked = [(q, a) for _, q, a in random.Random(seed).sample(queries, min(n, len(queries)))]
    container = open_or_build(folder, CACHE / SETS[name])
    container.chat_model = model
    out: dict[str, Any] = {}
    try:
        service = ChatService(container)
        prepared = service.prepare("probe", None, None)
        for style, system in STYLES.items():
            prompts.SYSTEM_PROMPT = system  # build_messages reads it at call time
            rows = []
            for i, (q, golds) in enumerate(picked):
                rec = record(service, prepared, q)
                got = replay(service, prepared, q, rec, CONFIGS["drop"])
                rows.append(
                    {
                        "ok": contains(got["final"].answer, golds),
                        "generated": got["final"].mode == "generated",
                        "tokens": len(rec.deltas),
                        "seconds": rec.times[-1] if rec.times else 0.0,
                        "text": "".join(rec.deltas)[:200],
                    }
                )
                print(f"  {name} {style} {i + 1}/{len(picked)}", file=sys.stderr)
            out[style] = {
                "n": len(rows),
                "accuracy": round(float(np.mean([r["ok"] for r in rows])), 3),
                "generated_share": round(float(np.mean([r["generated"] for r in rows])), 3),
                "generated_right": round(
                    float(np.mean([r["ok"] and r["generated"] for r in rows])), 3
                ),
                "mean_tokens": round(float(np.mean([r["tokens"] for r in rows])), 1),
                "gen_s_p50": round(float(np.percentile([r["seconds"] for r in rows], 50)), 2),
                "examples": [r["text"] for r in rows[:3]],
            }
    finally:
        prompts.SYSTEM_PROMPT = STYLES["free"]
        container.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-set", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default="covidqa,cmrc")
    args = ap.parse_args()
    from api.container import build_chat_model
    from api.settings import Settings

    model = build_chat_model(Settings())  # type: ignore[call-arg]
    result = {name: run(name, args.per_set, args.seed, model) for name in args.sets.split(",")}
    out = ROOT / "bench" / "results" / "prompt_styles.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    cols = ["n", "accuracy", "generated_share", "generated_right", "mean_tokens", "gen_s_p50"]
    print("| set | prompt | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for name, styles in result.items():
        for style, m in styles.items():
            print(f"| {name} | {style} | " + " | ".join(str(m[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
