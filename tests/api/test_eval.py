"""`grounded eval` on a tiny hand-made BEIR set whose right answers are known."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from api.container import Container
from api.eval_cli import markdown, run_eval
from data.models import Collection

DOCS = {
    "canteen": ("Canteen", "On Fridays the canteen serves fish and chips for lunch."),
    "parking": ("Parking", "Visitors park in the north lot next to the loading bay."),
    "leave": ("Leave", "Every employee receives thirty days of paid leave each year."),
}
QUERIES = [
    ("q1", "What does the canteen serve on Fridays?", ["fish and chips"], "canteen"),
    ("q2", "Where do visitors park?", ["north lot"], "parking"),
    ("q3", "How many days of paid leave do employees get?", ["thirty days"], "leave"),
    ("q4", "What is the capital of Peru?", [], None),  # unanswerable: no qrels
]


def make_set(root: Path) -> Path:
    folder = root / "tiny"
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for rid, (title, text) in DOCS.items():
            f.write(json.dumps({"_id": rid, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text, answers, _ in QUERIES:
            f.write(json.dumps({"_id": qid, "text": text, "answers": answers}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q, _, _, d in QUERIES if d]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_eval_scores_a_known_set_and_cleans_up(container: Container, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = run_eval(container, make_set(tmp_path), ks=[1, 3], out_dir=out, collection="ev")
    assert (report["documents"], report["chunks"]) == (3, 3)
    assert report["embedding_backend"] == getattr(container.embedder, "backend", None)
    assert set(report["modes"]) == {"dense", "hybrid"}
    for m in report["modes"].values():
        assert (m["queries"], m["unlabelled"]) == (3, 1)
        assert m["hit@1"] == m["recall@1"] == m["mrr@10"] == 1.0
        assert m["ndcg@10"] == 1.0 and m["graded"] is False
        assert m["latency_p95_ms"] >= m["latency_p50_ms"] > 0
    saved = json.loads(next(out.glob("tiny-*.json")).read_text())
    assert saved["modes"]["hybrid"]["hit@3"] == 1.0
    table = next(out.glob("tiny-*.md")).read_text()
    assert table == markdown(report) + "\n" and "| tiny | dense | 3 | 1.000 |" in table
    with container.sessions() as s:  # the throw-away collection is gone
        assert s.scalar(select(Collection).where(Collection.name == "ev")) is None


def test_eval_answer_rule_needs_the_answer_string(container: Container, tmp_path: Path) -> None:
    folder = make_set(tmp_path)
    # Gold answers that no chunk contains: the right document is found, but nothing "hits".
    lines = [json.loads(x) for x in (folder / "queries.jsonl").read_text().splitlines()]
    for rec in lines:
        rec["answers"] = ["a phrase nobody wrote"] if rec["answers"] else []
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    report = run_eval(container, folder, ks=[3], modes=["dense"])
    dense = report["modes"]["dense"]
    assert dense["hit@3"] == 0.0 and dense["recall@3"] == 1.0


def test_eval_merges_sets_whose_ids_collide_and_scores_each(
    container: Container, tmp_path: Path
) -> None:
    tiny = make_set(tmp_path)
    other = tmp_path / "other"
    (other / "qrels").mkdir(parents=True)
    # The same document and query ids as "tiny", about other things.
    docs = {"canteen": "The server room door code changes on the first of every month."}
    (other / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs.items())
    )
    q = {"_id": "q1", "text": "When does the server room code change?", "answers": ["first"]}
    (other / "queries.jsonl").write_text(json.dumps(q) + "\n")
    (other / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tcanteen\t1\n")
    out = tmp_path / "out"
    report = run_eval(container, [tiny, other], ks=[1], modes=["hybrid"], out_dir=out)
    assert (report["set"], report["documents"], report["chunks"]) == ("tiny+other", 4, 4)
    scored = {n: v["modes"]["hybrid"] for n, v in report["sets"].items()}
    assert (scored["tiny"]["queries"], scored["other"]["queries"]) == (3, 1)
    # Each question is answered from its own set, with the other set's documents beside it.
    assert scored["tiny"]["hit@1"] == scored["other"]["hit@1"] == 1.0
    assert "| other | hybrid | 1 | 1.000 |" in markdown(report)
    assert next(out.glob("tiny+other-*.md")).read_text() == markdown(report) + "\n"
