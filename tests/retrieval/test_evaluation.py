"""The eval metrics on hand-made rankings whose right values are worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from retrieval.evaluation import (
    Query,
    Ranked,
    hit_at,
    load_beir,
    mrr_at,
    ndcg_at,
    percentile,
    recall_at,
    summarize,
)

Q = Query(id="q1", text="who built it?", answers=("Ada",), relevant={"d1": 2, "d2": 1})
RANKED = [
    Ranked("d3", "nothing here"),
    Ranked("d2", "Ada is named but d2 is only partly relevant"),
    Ranked("d2", "another d2 chunk"),
    Ranked("d1", "Ada built it"),
]


def test_hit_needs_a_gold_document_and_an_answer_string() -> None:
    assert hit_at(Q, RANKED, 1) == 0.0
    assert hit_at(Q, RANKED, 2) == 1.0  # d2 is relevant and holds "Ada"
    wrong_doc = Query(id="q", text="", answers=("Ada",), relevant={"d9": 1})
    assert hit_at(wrong_doc, RANKED, 4) == 0.0
    no_answers = Query(id="q", text="", relevant={"d1": 1})
    assert hit_at(no_answers, RANKED, 3) == 0.0 and hit_at(no_answers, RANKED, 4) == 1.0


def test_recall_mrr_and_ndcg_count_documents_once() -> None:
    assert recall_at(Q, RANKED, 2) == 0.5
    assert recall_at(Q, RANKED, 4) == 1.0
    assert mrr_at(Q, RANKED) == 0.5  # documents in order: d3, d2, d1
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(Q, RANKED) == pytest.approx(dcg / idcg)
    assert ndcg_at(Q, [Ranked("d1", ""), Ranked("d2", "")]) == pytest.approx(1.0)


def test_percentile_interpolates() -> None:
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([5.0], 95) == 5.0 and percentile([], 50) == 0.0


def test_summary_skips_unlabelled_queries() -> None:
    unanswerable = Query(id="q2", text="?", answers=())
    out = summarize([Q, unanswerable], [RANKED, []], [10.0, 30.0], [1, 5])
    assert out["queries"] == 1 and out["unlabelled"] == 1
    assert (out["hit@1"], out["hit@5"], out["recall@5"], out["mrr@10"]) == (0.0, 1.0, 1.0, 0.5)
    assert out["graded"] is True and out["latency_p50_ms"] == 20.0


def test_load_beir_reads_grades_and_answers(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "T", "text": "body"}) + "\n"
    )
    (tmp_path / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "x?", "answers": ["body", ""]})
        + "\n"
        + json.dumps({"_id": "q2", "text": "y?"})
        + "\n"
    )
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq2\td1\t0\n"
    )
    corpus, queries = load_beir(tmp_path)
    assert corpus == {"d1": ("T", "body")}
    assert queries[0] == Query(id="q1", text="x?", answers=("body",), relevant={"d1": 2})
    assert queries[1].relevant == {}  # a zero grade is not relevant
