"""HTML main-content extraction: word recall and precision against reference text.

    .venv/bin/python bench/html_main.py [FOLDER ...]

Every `NAME.html` in the folders (default: tests/fixtures/html) that has a `NAME.ref.txt`
beside it is parsed twice: as the whole page (`main_only=False`, the parser before
boilerplate removal) and as its main content (the parser as it runs). Recall is the share
of the reference's words (lower-cased, counted with multiplicity) found in the output,
precision the share of the output's words found in the reference. Writes
bench/results/html_main.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.parsers.html import decode_html, extract  # noqa: E402

_WORDS = re.compile(r"\w+")


def word_scores(reference: str, extracted: str) -> tuple[float, float]:
    """(recall, precision) of `extracted`'s words against `reference`'s, as multisets."""
    ref = Counter(w.lower() for w in _WORDS.findall(reference))
    out = Counter(w.lower() for w in _WORDS.findall(extracted))
    common = sum((ref & out).values())
    return common / max(sum(ref.values()), 1), common / max(sum(out.values()), 1)


def measure(page: Path) -> dict[str, object]:
    """Scores of the whole page and of its main content against the page's reference."""
    reference = page.with_name(page.name.removesuffix(".html") + ".ref.txt").read_text()
    text = decode_html(page.read_bytes())
    row: dict[str, object] = {"file": page.name, "reference_words": len(_WORDS.findall(reference))}
    for label, main_only in (("whole_page", False), ("main_content", True)):
        start = time.perf_counter()
        doc = extract(text, main_only=main_only)
        elapsed = time.perf_counter() - start
        recall, precision = word_scores(reference, doc.text)
        row[label] = {
            "words": len(_WORDS.findall(doc.text)),
            "recall": round(recall, 3),
            "precision": round(precision, 3),
            "seconds": round(elapsed, 3),
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[ROOT / "tests/fixtures/html"])
    args = parser.parse_args()
    pages = sorted(
        p for f in args.folders for p in f.glob("*.html") if p.with_suffix(".ref.txt").exists()
    )
    rows = [measure(p) for p in pages]
    print(f"{'file':34} {'ref':>6}  {'whole page R / P':>17}  {'main content R / P':>19}")
    for r in rows:
        w, m = r["whole_page"], r["main_content"]
        assert isinstance(w, dict) and isinstance(m, dict)
        print(
            f"{r['file']:34} {r['reference_words']:>6}  {w['recall']:>8.3f} / {w['precision']:.3f}"
            f"  {m['recall']:>9.3f} / {m['precision']:.3f}"
        )
    out = ROOT / "bench" / "results" / "html_main.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
