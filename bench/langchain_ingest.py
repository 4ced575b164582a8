"""The LangChain tutorial ingest pipeline, timed from files to a searchable FAISS store.

    .venv/bin/python bench/langchain_ingest.py FILES_DIR [--model PATH]

TextLoader per file → RecursiveCharacterTextSplitter(1000, 200) → all-MiniLM-L6-v2 →
langchain_community FAISS.from_documents. The embedding step calls sentence-transformers
exactly as langchain-huggingface's HuggingFaceEmbeddings.embed_documents does (newlines to
spaces, `encode` with its default batch of 32): that package can't be installed beside
huggingface-hub 2, which Grounded's pins need. Prints one JSON line; bench/ingest.py runs it.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from langchain_community.document_loaders import TextLoader
from langchain_community.vectorstores import FAISS
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter


class HFStyleEmbeddings(Embeddings):
    """What HuggingFaceEmbeddings does (newlines to spaces, then encode), on any encoder."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray]) -> None:
        self.encode = encode

    @classmethod
    def load(cls, path: str) -> HFStyleEmbeddings:
        """sentence-transformers' model in `path`, encoded as the package does (batch 32)."""
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(path, device="cpu", local_files_only=True)
        return cls(lambda texts: model.encode(texts, show_progress_bar=False))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode([t.replace("\n", " ") for t in texts]).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", type=Path)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    if args.model is None:
        from retrieval.embedder import bundled_model_path

        args.model = str(bundled_model_path())
    t0 = time.perf_counter()
    embeddings = HFStyleEmbeddings.load(args.model)
    load_s = time.perf_counter() - t0
    start = time.perf_counter()
    docs = [d for p in sorted(args.files.iterdir()) for d in TextLoader(str(p), "utf-8").load()]
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = splitter.split_documents(docs)
    store = FAISS.from_documents(chunks, embeddings)
    wall = time.perf_counter() - start
    assert store.index.ntotal == len(chunks)
    print(
        json.dumps(
            {
                "documents": len(docs),
                "chunks": len(chunks),
                "wall_s": round(wall, 2),
                "model_load_s": round(load_s, 2),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
