"""The int8 ONNX embedding backend: the CPU default, close to torch, cached, checked at load."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import retrieval.embedder as embedder_module
from api.container import build_embedder
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.onnx_int8 import CHECK_TEXTS, Int8Encoder, _weights_digest
from tests.conftest import make_settings

PASSAGES = [
    "The incubation period of COVID-19 is between 2 and 14 days, most often about 5 days.",
    "Bearing temperatures of the northern turbines rose for weeks before each failure.",
    "新型冠状病毒肺炎的潜伏期一般为1至14天，多为3至7天。",
    "Quarterly revenue was 4.2 million euros, 12% more than in the same quarter last year.",
    "The cafeteria serves vegetarian lunches on Tuesdays and Thursdays.",
]
QUESTIONS = [
    "How long is the incubation period of the coronavirus?",
    "What happened to turbine bearings before they failed?",
    "新冠肺炎潜伏期多长？",
    "How much revenue did we make last quarter?",
]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(device="cpu", backend="torch")


@pytest.fixture
def int8_here(embedder) -> None:  # type: ignore[no-untyped-def]
    """Integer kernels differ by CPU; where the load check chose torch, say so and skip."""
    if embedder.backend != "onnx-int8":
        pytest.skip("int8 vectors disagreed with torch on this CPU; the default fell back to torch")


def test_the_cpu_default_is_int8_and_close_to_torch(embedder, torch_embedder, int8_here) -> None:  # type: ignore[no-untyped-def]
    assert embedder.backend == "onnx-int8" and torch_embedder.backend == "torch"
    int8 = embedder.embed_batch(PASSAGES, "passage")
    fp32 = torch_embedder.embed_batch(PASSAGES, "passage")
    assert int8.shape == fp32.shape == (5, 384) and int8.dtype == np.float32
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosines = (int8 * fp32).sum(axis=1)
    assert cosines.min() >= 0.98
    assert cosines.max() < 0.9999  # really another computation, not torch behind a new name
    # Same answers: each question's best passage is the same under both backends.
    q8 = embedder.embed_batch(QUESTIONS, "query")
    q32 = torch_embedder.embed_batch(QUESTIONS, "query")
    assert list((q8 @ int8.T).argmax(axis=1)) == list((q32 @ fp32.T).argmax(axis=1)) == [0, 1, 2, 3]


def test_vectors_come_back_in_input_order_across_batches(
    embedder, torch_embedder, int8_here
) -> None:  # type: ignore[no-untyped-def]
    texts = [*QUESTIONS, *PASSAGES, CHECK_TEXTS[6]]  # 10 texts of mixed lengths: two batches
    int8 = embedder.embed_batch(texts, "passage")
    fp32 = torch_embedder.embed_batch(texts, "passage")
    similarity = int8 @ fp32.T
    assert list(similarity.argmax(axis=1)) == list(range(len(texts)))
    assert similarity.diagonal().min() >= 0.98


def test_the_export_is_cached_and_reused(tmp_path: Path, monkeypatch, int8_here) -> None:  # type: ignore[no-untyped-def]
    first = SentenceTransformerEmbedder(device="cpu", cache_dir=tmp_path)
    assert first.backend == "onnx-int8"
    (exported,) = tmp_path.glob("*.onnx")  # only the int8 file stays, no temporaries
    stamp = exported.stat().st_mtime_ns

    def no_export(self: Int8Encoder, path: Path) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(Int8Encoder, "_export", no_export)
    again = SentenceTransformerEmbedder(device="cpu", cache_dir=tmp_path)
    assert again.backend == "onnx-int8" and exported.stat().st_mtime_ns == stamp
    a, b = (e.embed_batch(PASSAGES[:2], "passage") for e in (first, again))
    assert np.allclose(a, b)


def test_a_failed_check_falls_back_to_torch_or_fails_when_int8_was_asked_for(
    tmp_path: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(embedder_module, "MIN_COSINE", 1.01)  # no int8 vector is that close
    with caplog.at_level(logging.WARNING, logger="retrieval.embedder"):
        auto = SentenceTransformerEmbedder(device="cpu", cache_dir=tmp_path)
    assert auto.backend == "torch" and "too far from torch" in caplog.text
    with pytest.raises(ValueError, match="too far from torch"):
        SentenceTransformerEmbedder(device="cpu", cache_dir=tmp_path, backend="onnx-int8")


def test_a_failed_export_falls_back_to_torch_or_fails_when_int8_was_asked_for(
    tmp_path: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    def broken_export(self: Int8Encoder, path: Path) -> None:
        raise RuntimeError("exporter gone")  # e.g. a torch without the TorchScript exporter

    monkeypatch.setattr(Int8Encoder, "_export", broken_export)
    with caplog.at_level(logging.WARNING, logger="retrieval.embedder"):
        auto = SentenceTransformerEmbedder(device="cpu", cache_dir=tmp_path)
    assert auto.backend == "torch" and "RuntimeError: exporter gone" in caplog.text
    assert auto.embed_batch(PASSAGES[:1], "passage").shape == (1, 384)
    with pytest.raises(RuntimeError, match="exporter gone"):
        SentenceTransformerEmbedder(device="cpu", cache_dir=tmp_path, backend="onnx-int8")


def test_backend_values_are_checked_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        SentenceTransformerEmbedder(device="cpu", backend="tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU"):
        SentenceTransformerEmbedder(device="cuda", backend="onnx-int8")


def test_the_cache_key_follows_the_weights_not_exported_copies(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights v1")
    before = _weights_digest(tmp_path)
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"an exported copy")
    (tmp_path / "README.md").write_text("docs")
    assert _weights_digest(tmp_path) == before
    (tmp_path / "model.safetensors").write_bytes(b"weights v2")
    assert _weights_digest(tmp_path) != before


def test_settings_choose_the_backend_and_the_cache_folder(tmp_path: Path, int8_here) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    unset = {"cache_dir": ""}  # the session's shared cache comes from the environment
    default = build_embedder(make_settings(home, "sqlite://", embedding=unset))
    assert getattr(default, "backend", None) == "onnx-int8"
    assert len(list((home / "cache").glob("*.onnx"))) == 1  # <home>/cache unless configured
    shared = build_embedder(make_settings(tmp_path / "other", "sqlite://"))  # env: session cache
    assert getattr(shared, "backend", None) == "onnx-int8"
    assert not (tmp_path / "other" / "cache").exists()
    elsewhere = tmp_path / "models"
    torch_only = {"backend": "torch", "cache_dir": str(elsewhere)}
    forced = build_embedder(make_settings(home, "sqlite://", embedding=torch_only))
    assert getattr(forced, "backend", None) == "torch" and not elsewhere.exists()
