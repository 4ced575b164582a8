"""The LangChain retrieval baseline of issue 5, on the same questions as bench/tune_retrieval.py.

RecursiveCharacterTextSplitter(1000, 200) → all-MiniLM-L6-v2 → FAISS, LangChain's
BM25Retriever (rank_bm25, whitespace words), and EnsembleRetriever (weights 0.5 / 0.5,
reciprocal rank with c = 60), each asked for 5 documents. Chunk vectors come from the same
cache as Grounded's variants; queries are embedded by the FAISS retriever itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from langchain_core.documents import Document
from langchain_ingest import HFStyleEmbeddings  # bench/, beside this module

from retrieval.evaluation import Query

Rows = list[tuple[str, str]]  # (corpus id, chunk text)


def langchain_rankings(
    corpus: dict[str, tuple[str, str]],
    queries: Sequence[Query],
    embed_passages: Callable[[list[str]], np.ndarray],
    embed_queries: Callable[[list[str]], np.ndarray],
    cache: Path,
) -> tuple[Rows, dict[str, list[list[int]]]]:
    """The baseline's chunks, and for each of dense / bm25 / hybrid the top-5 row numbers."""
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    rows: Rows = [
        (rid, chunk)
        for rid, (title, text) in corpus.items()
        for chunk in splitter.split_text(f"{title}\n\n{text}\n")
    ]
    docs = [Document(page_content=t, metadata={"row": i}) for i, (_, t) in enumerate(rows)]
    vectors = embed_passages([t.replace("\n", " ") for _, t in rows])
    store = FAISS.from_embeddings(
        [(d.page_content, v.tolist()) for d, v in zip(docs, vectors, strict=True)],
        HFStyleEmbeddings(embed_queries),
        metadatas=[d.metadata for d in docs],
    )
    dense = store.as_retriever(search_kwargs={"k": 5})
    bm25 = BM25Retriever.from_documents(docs, k=5)
    hybrid = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])
    out: dict[str, list[list[int]]] = {"dense": [], "bm25": [], "hybrid": []}
    for q in queries:
        for name, retriever in (("dense", dense), ("bm25", bm25), ("hybrid", hybrid)):
            found = retriever.invoke(q.text)
            out[name].append([int(d.metadata["row"]) for d in found][:5])
    return rows, out
