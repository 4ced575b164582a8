"""Extraction quality: our parsers' text against reference text, per format.

    .venv/bin/python bench/extraction.py [--set bench/extraction_set] [--corpus ../shared/corpus]
                                         [--code DIR]

Folder layout (add files by dropping them in; nothing else to register):

    bench/extraction_set/<group>/<name>.<ext>       a document (any format we read)
    bench/extraction_set/<group>/<name>.ref.txt     the text a reader sees in it (plain or
                                                    Markdown; markup characters do not count)
    bench/extraction_set/<group>/<name>.why.txt     optional: why the file may score below
                                                    0.8 recall (printed with it)
    bench/extraction_set/shared.tsv                 documents in ../shared/corpus, too big or
                                                    not ours to commit: `document<TAB>reference
                                                    <TAB>note`, both paths relative to the
                                                    corpus; rows whose files are absent are
                                                    skipped. A reference ending .csv counts its
                                                    cells.

Rows are grouped by the detected format ("pdf", "docx", ...), except documents under a
folder named `scans` (or any folder whose name starts "scan"), which form a group of their
own: OCR is measured apart from text-layer PDFs.

Words are Unicode word characters, lower-cased; Chinese and Japanese characters count one by
one. Recall = shared words / reference words, precision = shared words / extracted words
(multisets). Speed is the parse time in this process (no sandbox), per file and in pages
per second where the format has pages. `--code DIR` imports the parsers from another
checkout (e.g. the main branch) to measure before/after on the same set.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]|[^\W_]+")
_REFERENCE_SUFFIXES = (".ref.txt", ".ref.md")


@dataclass
class Row:
    """One document's scores."""

    group: str
    name: str
    recall: float
    precision: float
    seconds: float
    pages: int | None
    note: str = ""
    error: str = ""


def words(text: str) -> collections.Counter[str]:
    """The multiset of lower-cased words (CJK characters one by one)."""
    return collections.Counter(w.lower() for w in _WORD.findall(text))


def score(extracted: str, reference: str) -> tuple[float, float]:
    """(recall, precision) of the extracted words against the reference words."""
    ext, ref = words(extracted), words(reference)
    shared = sum((ext & ref).values())
    return shared / max(sum(ref.values()), 1), shared / max(sum(ext.values()), 1)


def read_reference(path: Path) -> str:
    """A reference's text; a CSV's cells joined by spaces."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return "\n".join(" ".join(row) for row in csv.reader(f))
    return path.read_text(encoding="utf-8")


def local_pairs(folder: Path) -> list[tuple[Path, Path, str, str]]:
    """(document, reference, group, note) for each document with a reference beside it."""
    pairs = []
    for ref in sorted(folder.rglob("*.ref.*")):
        if not ref.name.endswith(_REFERENCE_SUFFIXES):
            continue
        stem = ref.name[: -len(".ref.txt")]
        docs = [p for p in ref.parent.glob(f"{stem}.*") if ".ref." not in p.name]
        docs = [p for p in docs if not p.name.endswith(".why.txt")]
        why = ref.parent / f"{stem}.why.txt"
        note = why.read_text(encoding="utf-8").strip() if why.exists() else ""
        group = "scan" if ref.parent.name.startswith("scan") else ""
        pairs += [(doc, ref, group, note) for doc in docs]
    return pairs


def shared_pairs(manifest: Path, corpus: Path) -> list[tuple[Path, Path, str, str]]:
    """Pairs listed in shared.tsv whose files are present."""
    if not manifest.exists():
        return []
    pairs = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        doc, ref, *rest = line.split("\t")
        if (corpus / doc).exists() and (corpus / ref).exists():
            group = "scan" if "/scan" in f"/{Path(doc).parent}" else ""
            pairs.append((corpus / doc, corpus / ref, group, rest[0] if rest else ""))
    return pairs


def measure(doc: Path, ref: Path, group: str, note: str) -> Row:
    """Detect, parse in-process and score one document."""
    from ingest import detect
    from ingest.parsers import PARSERS
    from ingest.sandbox import resolve

    data = doc.read_bytes()
    reference = read_reference(ref)
    try:
        fmt = detect.detect_format(data[: detect.HEAD_BYTES], doc.name, path=str(doc))
    except detect.UnsupportedTypeError as exc:
        return Row(group or doc.suffix.lstrip("."), doc.name, 0, 0, 0, None, note, str(exc))
    started = time.perf_counter()
    try:
        parsed = resolve(PARSERS[fmt])(data)
    except Exception as exc:
        error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        return Row(group or fmt, doc.name, 0, 0, time.perf_counter() - started, None, note, error)
    seconds = time.perf_counter() - started
    recall, precision = score(parsed.text, reference)
    return Row(group or fmt, doc.name, recall, precision, seconds, parsed.page_count, note)


def table(rows: list[Row]) -> str:
    """The per-group Markdown table."""
    out = [
        "| format | files | mean recall | mean precision | files < 0.8 recall "
        "| ms/file | pages/s |",
        "|---|---|---|---|---|---|---|",
    ]
    by_group: dict[str, list[Row]] = collections.defaultdict(list)
    for row in rows:
        by_group[row.group].append(row)
    for group, items in sorted(by_group.items()):
        n = len(items)
        low = sum(r.recall < 0.8 for r in items)
        pages = sum(r.pages or 0 for r in items if not r.error)
        secs = sum(r.seconds for r in items)
        rate = f"{pages / secs:.1f}" if pages and secs else "–"
        out.append(
            f"| {group} | {n} | {sum(r.recall for r in items) / n:.3f} | "
            f"{sum(r.precision for r in items) / n:.3f} | {low} ({low / n:.0%}) | "
            f"{1000 * secs / n:.1f} | {rate} |"
        )
    return "\n".join(out)


def main() -> None:
    """Measure the set and print the table and the files below 0.8 recall."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", type=Path, default=ROOT / "bench" / "extraction_set")
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout to import parsers from")
    args = ap.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    pairs = local_pairs(args.set) + shared_pairs(args.set / "shared.tsv", args.corpus)
    rows = [measure(*pair) for pair in pairs]
    print(f"{len(rows)} documents, parsers from {args.code.resolve()}\n")
    print(table(rows))
    low = [r for r in rows if r.recall < 0.8]
    if low:
        print("\nBelow 0.8 recall:")
    for r in low:
        why = r.error or r.note or "(no reason given)"
        print(f"- {r.group} {r.name}: recall {r.recall:.3f}, precision {r.precision:.3f}: {why}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "extraction.json").write_text(json.dumps([r.__dict__ for r in rows], indent=1))


if __name__ == "__main__":
    main()
