"""The lexical (BM25) index beside FAISS: tantivy on pre-tokenized text, derived from SQL.

One tantivy folder per (collection, generation), stamped with the index-log seq it covers,
like a FAISS file. Only the writer updates it (from the SQL log tail, after each job);
other processes open it read-only and see each committed update.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import Chunk
from retrieval.index_store import log_head, log_tail
from retrieval.tokenize import VERSION as TOKENIZER_VERSION
from retrieval.tokenize import tokenize

log = logging.getLogger(__name__)
_STAMP = "grounded.seq"
_HEAP = 64 * 1024 * 1024
_BATCH = 500


def _schema() -> Any:
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("chunk_id", stored=True, indexed=True, fast=True)
    sb.add_text_field("body", stored=False, tokenizer_name="whitespace")
    return sb.build()


class LexicalStore:
    """BM25 indexes of every collection generation, kept in step with SQL by the writer."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._open: dict[tuple[int, int], Any] = {}
        self._lock = threading.Lock()

    def path(self, collection_id: int, generation: int) -> Path:
        """The tantivy folder of a collection generation."""
        return self.directory / f"lexical-{collection_id}-g{generation}"

    def stamp(self, collection_id: int, generation: int) -> int:
        """The index-log seq the folder covers (0 when absent or from another tokenizer)."""
        try:
            text = (self.path(collection_id, generation) / _STAMP).read_text().split()
        except OSError:
            return 0
        # "v<tokenizer version> <seq>"; a folder from another version must be rebuilt.
        if len(text) != 2 or text[0] != f"v{TOKENIZER_VERSION}" or not text[1].isdigit():
            return 0
        return int(text[1])

    def sync(self, session: Session, collection_id: int, generation: int) -> bool:
        """Writer only: apply the SQL log since the stamp; False when already current."""
        head = log_head(session, collection_id, generation)
        stamp = self.stamp(collection_id, generation)
        if stamp == head:
            return False
        path = self.path(collection_id, generation)
        with self._lock:
            if stamp > head or stamp == 0:  # ahead of SQL, or new: build from the rows
                self._open.pop((collection_id, generation), None)
                shutil.rmtree(path, ignore_errors=True)
                adds = list(
                    session.scalars(
                        select(Chunk.id).where(
                            Chunk.collection_id == collection_id, Chunk.generation == generation
                        )
                    )
                )
                removes: list[int] = []
            else:
                adds, removes = log_tail(session, collection_id, generation, stamp, head)
            index = self._index(collection_id, generation, create=True)
            writer = index.writer(_HEAP, 1)
            if stamp and stamp <= head:  # a tail: re-adding after a crash must not duplicate
                for cid in adds + removes:
                    writer.delete_documents_by_term("chunk_id", cid)
            import tantivy

            for k in range(0, len(adds), _BATCH):
                rows = session.execute(
                    select(Chunk.id, Chunk.text).where(Chunk.id.in_(adds[k : k + _BATCH]))
                )
                for cid, text in rows:
                    writer.add_document(
                        tantivy.Document(chunk_id=cid, body=" ".join(tokenize(text)))
                    )
            writer.commit()
            writer.wait_merging_threads()
            tmp = path / (_STAMP + ".tmp")
            tmp.write_text(f"v{TOKENIZER_VERSION} {head}")
            os.replace(tmp, path / _STAMP)
        return True

    def _index(self, collection_id: int, generation: int, *, create: bool = False) -> Any:
        import tantivy

        key = (collection_id, generation)
        if key not in self._open:
            path = self.path(*key)
            if not path.exists():
                if not create:
                    return None
                path.mkdir(parents=True)
            self._open[key] = tantivy.Index(_schema(), path=str(path))
        return self._open[key]

    def search(
        self,
        collection_id: int,
        generation: int,
        query: str,
        k: int,
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) best first; empty until the writer has built the index."""
        import tantivy

        terms = list(dict.fromkeys(tokenize(query)))
        if not terms or (allowed is not None and len(allowed) == 0):
            return []
        with self._lock:
            index = self._index(collection_id, generation)
        if index is None:
            return []
        index.reload()
        schema = index.schema
        should = [
            (tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in terms
        ]
        q = tantivy.Query.boolean_query(should)
        if allowed is not None:
            ids = tantivy.Query.term_set_query(schema, "chunk_id", [int(x) for x in allowed])
            q = tantivy.Query.boolean_query([(tantivy.Occur.Must, ids), (tantivy.Occur.Must, q)])
        searcher = index.searcher()
        return [
            (int(searcher.doc(addr)["chunk_id"][0]), float(score))
            for score, addr in searcher.search(q, k).hits
        ]

    def drop(self, collection_id: int, keep: int | None = None) -> None:
        """Remove a collection's lexical folders (all generations but `keep`)."""
        with self._lock:
            for key in [k for k in self._open if k[0] == collection_id and k[1] != keep]:
                del self._open[key]
        for path in self.directory.glob(f"lexical-{collection_id}-g*"):
            if path != self.path(collection_id, keep or 0):
                shutil.rmtree(path, ignore_errors=True)
