"""Outcome of every file in a corpus folder through Grounded's ingest checks, by outcome.

    .venv/bin/python bench/sweep_corpus.py [../shared/corpus] [--timeout 120] [--ext .pptx ...]

Runs what the upload path and the worker run, minus embedding (which cannot change the
outcome): size/type sniffing (→ 415/422), parsing in the killable sandbox (→ encrypted,
no_text, corrupt, timeout), token chunking (→ no_text when nothing is left).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tokenizers  # noqa: E402

from data.types import ParsedDocument  # noqa: E402
from ingest import detect  # noqa: E402
from ingest.chunking import TokenChunker  # noqa: E402
from ingest.errors import ParseError  # noqa: E402
from ingest.parsers import PARSERS  # noqa: E402
from ingest.sandbox import parse_in_subprocess  # noqa: E402
from retrieval.embedder import bundled_model_path  # noqa: E402


def outcome(path: Path, chunker: TokenChunker, timeout: float) -> str:
    """'indexed', 'failed:<code>' or the HTTP status the upload would get."""
    data = path.read_bytes()
    if not data:
        return "422 empty"
    try:
        fmt = detect.detect_format(data[:8192], path.name, path=str(path))
    except detect.UnsupportedTypeError:
        return "415 unsupported"
    try:
        parsed: ParsedDocument = parse_in_subprocess(
            PARSERS[fmt], str(path), password=None, timeout_s=timeout, memory_limit_mb=4096
        )
    except ParseError as exc:
        return f"failed:{exc.code.value}"
    return "indexed" if chunker.split(parsed) else "failed:no_text"


def main() -> None:
    """Sweep and print counts."""
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=Path, nargs="?", default=ROOT.parent / "shared/corpus")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--ext", nargs="*", default=[], help="only these suffixes, e.g. .pptx .xlsx")
    args = ap.parse_args()
    tok = tokenizers.Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    chunker = TokenChunker(tok, max_tokens=254, overlap_tokens=24)
    files = sorted(p for p in args.corpus.rglob("*") if p.is_file() and p.suffix != ".tsv")
    if args.ext:
        files = [p for p in files if p.suffix.lower() in {e.lower() for e in args.ext}]
    counts: collections.Counter[str] = collections.Counter()
    results: dict[str, str] = {}
    start = time.perf_counter()
    for p in files:
        t = time.perf_counter()
        results[str(p.relative_to(args.corpus))] = res = outcome(p, chunker, args.timeout)
        counts[res] += 1
        if time.perf_counter() - t > 10:
            print(f"slow: {p} {time.perf_counter() - t:.1f}s", file=sys.stderr)
    wall = time.perf_counter() - start
    print(f"{len(files)} files in {wall:.0f} s\n\n| outcome | files |\n|---|---|")
    for key, n in sorted(counts.items()):
        print(f"| {key} | {n} |")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    # A filtered sweep must not replace the whole corpus's recorded outcomes.
    name = "sweep_corpus_filtered.json" if args.ext else "sweep_corpus.json"
    (out / name).write_text(json.dumps(results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
