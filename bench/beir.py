"""Shared helpers for the BEIR-format eval sets: load them, ingest a corpus for real.

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`,
`answers`) and `qrels/test.tsv` (`query-id  corpus-id  score`). `build_collection` writes each
record as `<_id>.txt` and runs Grounded's real ingest path (upload staging, the worker's
parse → chunk → embed → SQL → FAISS) into the `default` collection, so a hit's filename stem
is the corpus `_id` again (`doc_id`).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.container import Container, build_container  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.worker import Worker  # noqa: E402
from data.migrate import upgrade  # noqa: E402
from data.scope import Scope  # noqa: E402
from ingest.uploads import accept_upload  # noqa: E402
from retrieval import evaluation  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"

Corpus = dict[str, tuple[str, str]]
Query = tuple[str, str, list[str]]
Qrels = dict[str, set[str]]
T = TypeVar("T")


def load_beir(folder: Path) -> tuple[Corpus, list[Query], Qrels]:
    """(corpus {id: (title, text)}, queries [(qid, text, answers)], qrels {qid: {doc ids}})."""
    corpus, queries = evaluation.load_beir(folder)
    qrels = {q.id: set(q.relevant) for q in queries if q.relevant}
    return corpus, [(q.id, q.text, list(q.answers)) for q in queries], qrels


def doc_id(filename: str) -> str:
    """The corpus `_id` of an ingested document (its filename stem)."""
    return Path(filename).stem


def build_collection(
    folder_or_corpus: Path | Corpus,
    home: Path,
    *,
    limit: int | None = None,
    with_llm: bool = False,
) -> Container:
    """Migrate a fresh Grounded home, ingest the corpus into `default`; return the container."""
    corpus = (
        load_beir(folder_or_corpus)[0] if isinstance(folder_or_corpus, Path) else folder_or_corpus
    )
    records = list(corpus.items())[:limit] if limit else list(corpus.items())
    settings = Settings(home=home)  # type: ignore[call-arg]
    home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)
    container = build_container(settings, with_llm=with_llm)
    with container.sessions() as s:
        for rid, (title, text) in records:
            data = f"{title}\n\n{text}\n".encode()
            staged = container.blobs.stage([data], max_bytes=1 << 30)
            accept_upload(
                s,
                container.blobs,
                staged,
                collection="default",
                filename=f"{rid}.txt",
                embedders=container.embedders,
                scope=Scope.everything(),
            )
    Worker(container).run_until_idle()
    return container


def split_half(
    items: Sequence[T], labels: Sequence[bool], seed: int = 0
) -> tuple[list[T], list[T]]:
    """A stratified 50/50 split (calibration, report): each label's items shuffled by `seed`."""
    rng = random.Random(seed)
    calib: list[T] = []
    report: list[T] = []
    for value in (False, True):
        group = [it for it, lab in zip(items, labels, strict=True) if lab == value]
        rng.shuffle(group)
        half = len(group) // 2
        calib += group[:half]
        report += group[half:]
    return calib, report


def prf(predicted: Sequence[bool], actual: Sequence[bool]) -> dict[str, float]:
    """Precision, recall and F1 of the positive class (0.0 where undefined)."""
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    fp = sum(p and not a for p, a in zip(predicted, actual, strict=True))
    fn = sum(a and not p for p, a in zip(predicted, actual, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def open_or_build(corpus: Path | Corpus, home: Path, *, with_llm: bool = False) -> Container:
    """The collection ingested into `home` by an earlier run, else a fresh one (same data)."""
    if (home / "READY").exists():
        return build_container(Settings(home=home), with_llm=with_llm)  # type: ignore[call-arg]
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    container = build_collection(corpus, home, with_llm=with_llm)
    (home / "READY").write_text("ingested\n")
    return container
