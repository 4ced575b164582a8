"""Compare pypdf and pypdfium2 on a folder of PDFs: speed, failures and text quality.

Each (parser, file) runs in its own child process with a timeout, so a hang or a
crash is counted, never fatal. Time is measured inside the child (open + extract
all pages), so interpreter start-up is not counted.

    .venv/bin/python bench/pdf_parsers.py [--corpus DIR] [--timeout S] [--dump DIR]
    .venv/bin/python bench/pdf_parsers.py --outcomes   # ingest.parsers.pdf via the sandbox
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path("/work/shared/corpus")
# Known passwords from corpus/TRICKY_FILES.tsv; tried in turn when a file is encrypted.
PASSWORDS = ["asdfzxcv", "foo", "usersecret", "password", "openpassword"]
PARSERS = ("pypdf", "pypdfium2")


def _pages_pypdf(data: bytes, password: str | None) -> list[str]:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(password or ""):
        raise PermissionError("encrypted")
    return [page.extract_text() or "" for page in reader.pages]


def _pages_pypdfium2(data: bytes, password: str | None) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data, password=password)
    try:
        texts = []
        for page in pdf:
            textpage = page.get_textpage()
            texts.append(textpage.get_text_bounded())
            textpage.close()
            page.close()
        return texts
    finally:
        pdf.close()


def _quality(texts: list[str]) -> dict[str, int]:
    """Counts that expose empty pages, garbling (U+FFFD, controls, private use) and CJK."""
    joined = "".join(texts)
    bad = sum(
        1
        for ch in joined
        if ch == "\ufffd"
        or unicodedata.category(ch) in ("Co", "Cs")
        or (unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    )
    cjk = sum(1 for ch in joined if "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return {
        "pages_with_text": sum(1 for t in texts if len("".join(t.split())) >= 10),
        "chars": len("".join(joined.split())),
        "bad_chars": bad,
        "cjk_chars": cjk,
    }


def run_one(parser: str, path: str) -> dict[str, object]:
    """Child side: parse one file with one parser, trying the known passwords if needed."""
    data = Path(path).read_bytes()
    extract = _pages_pypdf if parser == "pypdf" else _pages_pypdfium2
    start = time.perf_counter()
    error = ""
    for password in [None, *PASSWORDS]:
        try:
            texts = extract(data, password)
        except Exception as exc:  # the bench records every failure
            error = f"{type(exc).__name__}: {exc}"[:160]
            if "ncrypt" in error or "assword" in error or "decrypt" in error:
                continue
            break
        seconds = time.perf_counter() - start
        return {
            "ok": True,
            "pages": len(texts),
            "seconds": seconds,
            **_quality(texts),
            "text": "\f".join(texts),
        }
    return {"ok": False, "error": error, "seconds": time.perf_counter() - start}


@dataclass
class Run:
    """One parser's result on one file (as reported by the child)."""

    ok: bool
    seconds: float = 0.0
    error: str = ""
    pages: int = 0
    pages_with_text: int = 0
    chars: int = 0
    bad_chars: int = 0
    cjk_chars: int = 0
    text: str = ""


def _spawn(parser: str, path: Path, timeout: float) -> Run:
    cmd = [sys.executable, __file__, "--one", parser, str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Run(ok=False, error=f"timeout after {timeout:g} s", seconds=timeout)
    if proc.returncode != 0 or not proc.stdout:
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        return Run(ok=False, error=f"exit {proc.returncode}: {tail[0][:120]}")
    return Run(**json.loads(proc.stdout))


def bench(files: list[Path], timeout: float, dump: Path | None) -> None:
    """Run both parsers over `files` and print the summary table and the disagreements."""
    results: dict[str, dict[Path, Run]] = {p: {} for p in PARSERS}
    for path in files:
        for parser in PARSERS:
            run = results[parser][path] = _spawn(parser, path, timeout)
            if dump and run.ok:
                out = dump / parser / (str(path.relative_to(CORPUS)).replace("/", "__") + ".txt")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(run.text)
    print(
        f"\n{'parser':<10} {'ok':>4} {'failed':>6} {'pages':>6} {'seconds':>8} {'pages/s':>8}"
        f" {'pg w/ text':>10} {'chars':>9} {'bad chars':>9} {'CJK':>7}"
    )
    for parser, runs in results.items():
        ok = [r for r in runs.values() if r.ok]
        pages, secs = sum(r.pages for r in ok), sum(r.seconds for r in ok)
        print(
            f"{parser:<10} {len(ok):>4} {len(runs) - len(ok):>6} {pages:>6} {secs:>8.2f}"
            f" {pages / secs if secs else 0:>8.1f} {sum(r.pages_with_text for r in ok):>10}"
            f" {sum(r.chars for r in ok):>9} {sum(r.bad_chars for r in ok):>9}"
            f" {sum(r.cjk_chars for r in ok):>7}"
        )
    print("\nfiles where the parsers disagree (failure, or >10% chars / >5 bad chars apart):")
    for path in files:
        a, b = results["pypdf"][path], results["pypdfium2"][path]
        if _disagree(a, b):
            name = path.relative_to(CORPUS)
            print(f"  {name}\n      pypdf: {_short(a)}\n  pypdfium2: {_short(b)}")


def _disagree(a: Run, b: Run) -> bool:
    if a.ok != b.ok:
        return True
    far = abs(a.chars - b.chars) > 0.1 * max(a.chars, b.chars, 1)
    return a.ok and (far or abs(a.bad_chars - b.bad_chars) > 5)


def _short(run: Run) -> str:
    if not run.ok:
        return f"FAILED {run.error}"
    return (
        f"{run.pages} pages, {run.pages_with_text} with text, {run.chars} chars,"
        f" {run.bad_chars} bad, {run.seconds:.3f} s"
    )


def outcomes(files: list[Path], timeout: float) -> None:
    """Run ingest.parsers.pdf:parse via the sandbox over `files` and count the outcomes."""
    sys.path.insert(0, str(ROOT))
    from ingest.errors import ParseError
    from ingest.sandbox import parse_in_subprocess

    counts: Counter[str] = Counter()
    for path in files:
        try:
            doc = parse_in_subprocess(
                "ingest.parsers.pdf:parse",
                str(path),
                password=None,
                timeout_s=timeout,
                memory_limit_mb=2048,
            )
            outcome, detail = "parsed", f"{doc.page_count} pages, {len(doc.text)} chars"
        except ParseError as exc:
            outcome, detail = exc.code.value, exc.message
        counts[outcome] += 1
        print(f"{outcome:<9} {path.relative_to(CORPUS)}: {detail[:110]}")
    print("\n" + ", ".join(f"{k}: {v}" for k, v in counts.most_common()) + f" (of {len(files)})")


def main() -> None:
    """Entry point; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--dump", type=Path, help="write each parser's text here for eyeballing")
    ap.add_argument("--outcomes", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("PARSER", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    files = sorted(p for p in args.corpus.rglob("*") if p.is_file() and _is_pdf(p))
    if args.outcomes:
        outcomes(files, args.timeout)
    else:
        bench(files, args.timeout, args.dump)


def _is_pdf(path: Path) -> bool:
    with path.open("rb") as fh:
        return path.suffix.lower() == ".pdf" or fh.read(1024).find(b"%PDF-") >= 0


if __name__ == "__main__":
    main()
