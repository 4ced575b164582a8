"""Small builders shared by tests: real files made in the test, a counting embedder."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from retrieval.embedder import Embedder, Kind


def make_docx(paragraphs: Sequence[tuple[str, str]]) -> bytes:
    """A real .docx: (style, text) pairs, style '' for body text or 'Heading N'."""
    import docx

    d = docx.Document()
    for style, text in paragraphs:
        if style.startswith("Heading"):
            d.add_heading(text, level=int(style.split()[-1]))
        else:
            d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


class CountingEmbedder:
    """Wraps the real embedder and counts the passages it was asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
        self.passages = 0

    @property
    def tokenizer(self):  # type: ignore[no-untyped-def]
        """The wrapped model's tokenizer."""
        return self.inner.tokenizer

    def count_tokens(self, text: str) -> int:
        """Delegate."""
        return self.inner.count_tokens(text)

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Count, then delegate."""
        if kind == "passage":
            self.passages += len(texts)
        return self.inner.embed_batch(texts, kind)
