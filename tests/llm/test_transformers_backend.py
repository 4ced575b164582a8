"""The real bundled SmolLM2-135M GGUF run in-process with transformers (offline)."""

from __future__ import annotations

import os
import threading

import pytest

from llm.queue import BoundedChatModel
from llm.transformers_backend import BUNDLED_MODEL_ID, TransformersChatModel, _TokenStreamer
from llm.types import ChatMessage, ChatModel

pytestmark = pytest.mark.integration

MSGS = [
    ChatMessage("system", "You answer in one short sentence."),
    ChatMessage("user", "What is the capital of France?"),
]


@pytest.fixture(scope="module")
def model() -> TransformersChatModel:
    """The bundled model, loaded once for this module (about 20 s on CPU)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    return TransformersChatModel(device="cpu")


def test_loads_offline_with_identity(model: TransformersChatModel) -> None:
    assert model.model_id == BUNDLED_MODEL_ID
    assert model.context_window == 8192  # SmolLM2's max_position_embeddings
    assert model.device == "cpu"
    chat_model: ChatModel = model  # satisfies the protocol
    assert chat_model.context_window == 8192


def test_count_tokens_uses_the_chat_template(model: TransformersChatModel) -> None:
    bare = model.count_tokens([ChatMessage("user", "Hi")])
    longer = model.count_tokens([ChatMessage("user", "Hi " + "there " * 50)])
    assert bare > 2  # the template adds role markers around "Hi"
    assert longer > bare + 40
    two_turns = model.count_tokens([ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")])
    assert two_turns != bare


def test_stream_is_greedy_deterministic_and_matches_plain_generate(
    model: TransformersChatModel,
) -> None:
    first = list(model.stream(MSGS, max_tokens=24))
    stats = model.last_stats
    second = "".join(model.stream(MSGS, max_tokens=24))
    text = "".join(first)
    assert len(first) > 1 and text.strip()  # streamed in several deltas
    assert "Paris" in text
    assert second == text
    assert stats is not None and stats.prompt_tokens == model.count_tokens(MSGS)
    assert 0 < stats.completion_tokens <= 24
    assert 0 < stats.first_token_s <= stats.total_s

    plain, plain_stats = model.generate_plain(MSGS, 24)
    assert plain == text
    assert plain_stats.completion_tokens == stats.completion_tokens


def _ids(model: TransformersChatModel, text: str) -> list[int]:
    return list(model._tokenizer.encode(text, add_special_tokens=False))


def test_each_token_is_streamed_as_soon_as_it_is_generated(model: TransformersChatModel) -> None:
    import torch

    streamer = _TokenStreamer(model._tokenizer)
    streamer.put(torch.tensor([_ids(model, "The prompt is skipped.")]))
    assert streamer._queue.empty()
    first, second = _ids(model, "Paris is")  # two tokens: "Paris", " is"
    streamer.put(torch.tensor([first]))
    # No space after it yet: a word-buffering streamer would still hold "Paris" back.
    assert streamer._queue.get_nowait() == "Paris"
    streamer.put(torch.tensor([second]))
    assert streamer._queue.get_nowait() == " is"
    streamer.end()
    assert list(streamer) == []  # only the end marker was left


def test_a_character_split_across_tokens_waits_for_its_last_byte(
    model: TransformersChatModel,
) -> None:
    import torch

    pieces = _ids(model, "鬱")  # a rare Han character: several byte-level tokens
    assert len(pieces) >= 2
    streamer = _TokenStreamer(model._tokenizer)
    streamer.put(torch.tensor([[1]]))  # the prompt
    for token in pieces[:-1]:
        streamer.put(torch.tensor([token]))
    assert streamer._queue.empty()  # never half a character (U+FFFD)
    streamer.put(torch.tensor([pieces[-1]]))
    streamer.end()
    assert list(streamer) == ["鬱"]


def test_max_tokens_is_respected(model: TransformersChatModel) -> None:
    story = [ChatMessage("user", "Write a long story about a dragon and a knight.")]
    text = "".join(model.stream(story, max_tokens=5))
    assert text
    assert model.last_stats is not None and model.last_stats.completion_tokens == 5


def test_cancel_after_first_delta_stops_early(model: TransformersChatModel) -> None:
    story = [ChatMessage("user", "Write a long story about a dragon and a knight.")]
    cancel = threading.Event()
    deltas = []
    for delta in model.stream(story, max_tokens=200, cancel=cancel):
        deltas.append(delta)
        cancel.set()
    assert model.last_stats is not None
    assert model.last_stats.completion_tokens < 10  # far fewer than 200
    assert len(deltas) <= 3


def test_early_close_through_the_queue_frees_the_model(model: TransformersChatModel) -> None:
    bounded = BoundedChatModel(model, max_concurrent=1, max_waiting=0)
    story = [ChatMessage("user", "Write a long story about a dragon and a knight.")]
    stream = bounded.stream(story, max_tokens=200)
    assert next(stream)
    stream.close()  # joins the generate thread before the slot is freed
    assert bounded.running == 0
    assert "".join(bounded.stream(MSGS, max_tokens=24)) == "".join(
        model.stream(MSGS, max_tokens=24)
    )


def test_rejects_a_prompt_longer_than_the_context(
    model: TransformersChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "context_window", 10)  # this instance only, undone after
    with pytest.raises(ValueError, match="context window is 10"):
        list(model.stream(MSGS, max_tokens=4))
