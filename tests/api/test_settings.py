"""Settings that name a choice are enums: an unknown value fails at startup, clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.container import build_container
from api.settings import EmbeddingBackend, FaissGpu, LLMBackend, Settings
from data.types import RetrievalMode
from retrieval.embedder import Embedder


@pytest.mark.parametrize(
    ("env", "value", "field"),
    [
        ("GROUNDED_RETRIEVAL__MODE", "bm25", "retrieval.mode"),
        ("GROUNDED_RETRIEVAL__MODE", "Hybrid ", "retrieval.mode"),
        ("GROUNDED_LLM__BACKEND", "ollama", "llm.backend"),
        ("GROUNDED_EMBEDDING__BACKEND", "onnx", "embedding.backend"),
        ("GROUNDED_FAISS_GPU", "yes", "faiss_gpu"),
    ],
)
def test_an_unknown_choice_fails_naming_the_setting_and_the_choices(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as err:
        Settings()
    message = str(err.value)
    assert field in message and "Input should be" in message and repr(value) in message


def test_known_choices_parse_to_enums(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROUNDED_RETRIEVAL__MODE", "dense")
    monkeypatch.setenv("GROUNDED_LLM__BACKEND", "openai")
    monkeypatch.setenv("GROUNDED_EMBEDDING__BACKEND", "onnx-int8")
    monkeypatch.setenv("GROUNDED_FAISS_GPU", "off")
    s = Settings()
    assert s.retrieval.mode is RetrievalMode.DENSE and s.llm.backend is LLMBackend.OPENAI
    assert s.embedding.backend is EmbeddingBackend.ONNX_INT8 and s.faiss_gpu is FaissGpu.OFF
    monkeypatch.delenv("GROUNDED_RETRIEVAL__MODE")
    assert Settings().retrieval.mode is RetrievalMode.HYBRID


def test_the_container_retriever_follows_the_mode(
    tmp_path: Path, db_url: str, embedder: Embedder
) -> None:
    from tests.conftest import make_settings

    for mode in RetrievalMode:
        settings = make_settings(tmp_path / mode.value, db_url, retrieval={"mode": mode.value})
        container = build_container(settings, embedder=embedder)
        try:
            assert container.retriever.config.mode is mode
        finally:
            container.close()
