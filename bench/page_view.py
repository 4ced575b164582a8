"""The source view's cost per PDF page: rendering, image size, locating a passage.

    .venv/bin/python bench/page_view.py [FOLDER ...] [--pages 3] [--width 900]

For the first pages of every PDF under the folders (default: tests/fixtures/pdf and the
shared corpus's unstructured and pypdf samples): the time GET .../pages/{n}/image spends
(SourceViewer.render: a sandbox child opens the PDF, renders, encodes lossless WebP), the
same in-process (so the sandbox's share shows), the image's size as WebP and as PNG, and
the time to locate a page's first 300 characters (SourceViewer.boxes). Writes
bench/results/page_view.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.errors import DomainError  # noqa: E402
from ingest.chunkstore import layout_of  # noqa: E402
from ingest.errors import ParseError  # noqa: E402
from ingest.pageview import render_page  # noqa: E402
from ingest.parsers.pdf import parse  # noqa: E402
from ingest.sourceview import SourceViewer, ViewerConfig, passage_of  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_FOLDERS = [
    ROOT / "tests" / "fixtures" / "pdf",
    CORPUS / "unstructured-example-docs" / "pdf",
    CORPUS / "pypdf-sample-files",
]


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p90": round(ordered[int(len(ordered) * 0.9)], 2),
        "mean": round(statistics.mean(ordered), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", type=Path, default=DEFAULT_FOLDERS)
    ap.add_argument("--pages", type=int, default=3, help="first pages of each PDF")
    ap.add_argument("--width", type=int, default=900)
    args = ap.parse_args()
    viewer = SourceViewer(ViewerConfig(timeout_s=60, max_concurrent=1))
    rows: dict[str, list[float]] = {k: [] for k in ("sandbox_ms", "inproc_ms", "boxes_ms")}
    sizes: dict[str, list[float]] = {"webp_kb": [], "png_kb": []}
    files = sorted(f for d in args.folders for f in d.rglob("*.pdf") if f.stat().st_size < 5e6)
    for path in files:
        data = path.read_bytes()
        try:
            doc = parse(data)
            viewer.render(path, 1, args.width, "webp")  # warm: the fork server, the page cache
        except (ParseError, DomainError):
            continue  # encrypted, scanned, broken: not viewable as text pages
        for page in doc.pages[: args.pages]:
            started = time.perf_counter()
            webp = viewer.render(path, page.number, args.width, "webp")
            rows["sandbox_ms"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            render_page(data, page=page.number, width=args.width, fmt="webp")
            rows["inproc_ms"].append((time.perf_counter() - started) * 1000)
            png = render_page(data, page=page.number, width=args.width, fmt="png")
            sizes["webp_kb"].append(len(webp) / 1024)
            sizes["png_kb"].append(len(png) / 1024)
            end = min(page.start + 300, page.end)
            spans = passage_of(doc.text, layout_of(doc), page.start, end).spans
            started = time.perf_counter()
            viewer.boxes(path, spans)
            rows["boxes_ms"].append((time.perf_counter() - started) * 1000)
    result = {
        "pages": len(rows["sandbox_ms"]),
        "width": args.width,
        **{k: _summary(v) for k, v in {**rows, **sizes}.items()},
    }
    print(json.dumps(result, indent=1))
    out = ROOT / "bench" / "results" / "page_view.json"
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
