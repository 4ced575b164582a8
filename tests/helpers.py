"""Small builders shared by tests: real files made in the test, a counting embedder."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.embedder import Embedder, Kind


def make_pdf(
    pages: Sequence[Sequence[str]], *, size: tuple[float, float] = (612.0, 792.0), rotate: int = 0
) -> bytes:
    """A real PDF made with PDFium: each page's lines in 12 pt Helvetica, 20 pt apart from
    the top-left margin (72 pt); `rotate` quarter turns clockwise set as the pages' /Rotate."""
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pdf = pdfium.PdfDocument.new()
    font = pdfium_c.FPDFText_LoadStandardFont(pdf, b"Helvetica")
    for lines in pages:
        page = pdf.new_page(*size)
        for k, line in enumerate(lines):
            obj = pdfium_c.FPDFPageObj_CreateTextObj(pdf, font, 12.0)
            text = (line + "\0").encode("utf-16-le")
            pdfium_c.FPDFText_SetText(obj, ctypes.cast(text, ctypes.POINTER(ctypes.c_ushort)))
            pdfium_c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 72, size[1] - 72 - 20 * k)
            pdfium_c.FPDFPage_InsertObject(page, obj)
        if rotate:
            pdfium_c.FPDFPage_SetRotation(page, rotate)
        page.gen_content()
        page.close()
    buf = io.BytesIO()
    pdf.save(buf)
    pdfium_c.FPDFFont_Close(font)
    pdf.close()
    return buf.getvalue()


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


class ScriptedChatModel:
    """A chat model that always answers `reply` (for paths where the words don't matter)."""

    model_id = "scripted"
    context_window = 8192

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls = 0
        self.last_stats = None

    def count_tokens(self, messages) -> int:  # type: ignore[no-untyped-def]
        """About four characters a token."""
        return sum(len(m.content) for m in messages) // 4

    def stream(self, messages, *, max_tokens, temperature=0.0, cancel=None):  # type: ignore[no-untyped-def]
        """The reply, word by word."""
        self.calls += 1
        for word in self.reply.split(" "):
            yield word + " "


def save_tiny_bert(dest: Path, *, num_labels: int | None = None, init_range: float = 0.02) -> Path:
    """A random 1-layer, 32-wide BERT with MiniLM's tokenizer, saved offline to `dest`."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    from retrieval.embedder import bundled_model_path

    tok = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    torch.manual_seed(1)
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels or 2,
        initializer_range=init_range,
    )
    model = BertForSequenceClassification(cfg) if num_labels else BertModel(cfg)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest
