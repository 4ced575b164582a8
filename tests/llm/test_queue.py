"""BoundedChatModel: bounded waiting, immediate busy errors, slots freed on every exit path."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from llm.queue import BoundedChatModel
from llm.types import ChatMessage, GenerationStats, LLMBusyError, LLMUnavailableError

MSGS = [ChatMessage("user", "hi")]


class ScriptedModel:
    """A fake ChatModel: each stream yields `deltas`, blocking on `gate` before each one."""

    model_id = "fake"
    context_window = 100

    def __init__(self, deltas: Sequence[str] = ("a", "b", "c"), fail_after: int = -1) -> None:
        self.deltas = list(deltas)
        self.fail_after = fail_after
        self.gate = threading.Event()
        self.started = 0
        self.prompts: list[str] = []
        self.active = 0
        self.max_active = 0
        self.closed = 0
        self.last_stats: GenerationStats | None = None
        self._lock = threading.Lock()

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(m.content) for m in messages)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        with self._lock:
            self.prompts.append(messages[-1].content)
            self.started += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            for i, delta in enumerate(self.deltas):
                self.gate.wait(5)
                if cancel is not None and cancel.is_set():
                    return
                if i == self.fail_after:
                    raise LLMUnavailableError("scripted failure")
                yield delta
            self.last_stats = GenerationStats(1, len(self.deltas), 0.0, 0.0)
        except GeneratorExit:
            self.closed += 1
            raise
        finally:
            with self._lock:
                self.active -= 1


def _wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def _consume_in_thread(stream: Iterator[str], out: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.extend(stream), daemon=True)
    thread.start()
    return thread


def test_full_queue_raises_busy_at_once_with_retry_after() -> None:
    inner = ScriptedModel()
    model = BoundedChatModel(inner, max_concurrent=2, max_waiting=3, retry_after_s=7)
    outputs: list[list[str]] = [[] for _ in range(5)]
    streams = [model.stream(MSGS, max_tokens=5) for _ in range(5)]  # 2 run + 3 wait
    threads = [_consume_in_thread(s, o) for s, o in zip(streams, outputs, strict=True)]
    _wait_for(lambda: inner.started == 2)
    assert (model.running, model.waiting) == (2, 3)

    t0 = time.monotonic()
    with pytest.raises(LLMBusyError) as info:
        model.stream(MSGS, max_tokens=5)
    assert time.monotonic() - t0 < 0.1  # refused at once, never a timeout
    assert info.value.retry_after_s == 7
    assert "busy" in str(info.value)

    inner.gate.set()
    for t in threads:
        t.join(5)
    assert outputs == [["a", "b", "c"]] * 5
    assert inner.max_active == 2  # never more than max_concurrent generations at once
    assert (model.running, model.waiting) == (0, 0)
    assert model.last_stats == GenerationStats(1, 3, 0.0, 0.0)


def test_waiters_are_served_in_arrival_order() -> None:
    inner = ScriptedModel(deltas=["x"])
    inner.gate.set()
    model = BoundedChatModel(inner, max_concurrent=1, max_waiting=3)
    first = model.stream(MSGS, max_tokens=1)  # granted at once: holds the only slot
    waiters = [model.stream([ChatMessage("user", str(i))], max_tokens=1) for i in range(3)]
    threads = [threading.Thread(target=list, args=(waiters[i],), daemon=True) for i in (2, 0, 1)]
    for t in threads:  # threads start out of order; the admission order decides
        t.start()
    time.sleep(0.1)
    assert inner.prompts == []  # all three are blocked behind `first`
    first.close()
    for t in threads:
        t.join(5)
    assert inner.prompts == ["0", "1", "2"]


def test_slot_freed_after_exhaustion() -> None:
    inner = ScriptedModel()
    inner.gate.set()
    model = BoundedChatModel(inner, max_concurrent=1, max_waiting=0)
    assert list(model.stream(MSGS, max_tokens=3)) == ["a", "b", "c"]
    assert model.running == 0
    assert list(model.stream(MSGS, max_tokens=3)) == ["a", "b", "c"]  # not busy


def test_slot_freed_after_early_close() -> None:
    inner = ScriptedModel()
    inner.gate.set()
    model = BoundedChatModel(inner, max_concurrent=1, max_waiting=0)
    stream = model.stream(MSGS, max_tokens=3)
    assert next(stream) == "a"
    with pytest.raises(LLMBusyError):
        model.stream(MSGS, max_tokens=3)
    stream.close()
    assert inner.closed == 1  # the inner generation was stopped, not left running
    assert model.running == 0
    assert list(model.stream(MSGS, max_tokens=3)) == ["a", "b", "c"]


def test_slot_freed_after_inner_exception() -> None:
    inner = ScriptedModel(fail_after=1)
    inner.gate.set()
    model = BoundedChatModel(inner, max_concurrent=1, max_waiting=0)
    stream = model.stream(MSGS, max_tokens=3)
    assert next(stream) == "a"
    with pytest.raises(LLMUnavailableError):
        next(stream)
    assert model.running == 0
    inner.fail_after = -1
    assert list(model.stream(MSGS, max_tokens=3)) == ["a", "b", "c"]


def test_cancel_frees_running_and_waiting_slots() -> None:
    inner = ScriptedModel()
    model = BoundedChatModel(inner, max_concurrent=1, max_waiting=1)
    cancel_run, cancel_wait = threading.Event(), threading.Event()
    running = model.stream(MSGS, max_tokens=3, cancel=cancel_run)
    waiting = model.stream(MSGS, max_tokens=3, cancel=cancel_wait)
    out_run: list[str] = []
    out_wait: list[str] = []
    threads = [_consume_in_thread(running, out_run), _consume_in_thread(waiting, out_wait)]
    _wait_for(lambda: inner.started == 1)
    assert (model.running, model.waiting) == (1, 1)

    cancel_wait.set()  # a waiting caller whose client left gives up its place
    threads[1].join(5)
    assert out_wait == [] and model.waiting == 0

    cancel_run.set()
    inner.gate.set()
    threads[0].join(5)
    assert out_run == [] and model.running == 0
    assert inner.started == 1  # the cancelled waiter never reached the model


def test_abandoned_unstarted_stream_releases_its_place() -> None:
    inner = ScriptedModel()
    model = BoundedChatModel(inner, max_concurrent=1, max_waiting=0)
    stream = model.stream(MSGS, max_tokens=3)
    assert model.running == 1
    del stream  # never iterated, never closed: the finaliser frees the slot
    assert model.running == 0


def test_a_caller_waiting_past_max_wait_gets_busy_and_leaves_the_queue() -> None:
    inner = ScriptedModel()
    model = BoundedChatModel(inner, max_concurrent=1, max_waiting=2, max_wait_s=0.3)
    first: list[str] = []
    holder = _consume_in_thread(model.stream(MSGS, max_tokens=3), first)
    _wait_for(lambda: inner.started == 1)  # holds the only slot; its gate stays shut
    late = model.stream(MSGS, max_tokens=3)
    assert model.waiting == 1
    t0 = time.monotonic()
    with pytest.raises(LLMBusyError) as info:
        next(late)
    assert 0.3 <= time.monotonic() - t0 < 2.0 and "waited 0.3 s" in str(info.value)
    assert (model.running, model.waiting) == (1, 0)  # its place is given up
    late.close()  # closing after the error frees nothing twice
    assert (model.running, model.waiting) == (1, 0)
    inner.gate.set()
    holder.join(5)
    assert first == ["a", "b", "c"] and inner.started == 1  # the late caller never ran
    assert list(model.stream(MSGS, max_tokens=3)) == ["a", "b", "c"]
    assert (model.running, model.waiting) == (0, 0)


def test_a_slot_freed_within_max_wait_is_taken() -> None:
    inner = ScriptedModel()
    model = BoundedChatModel(inner, max_concurrent=1, max_waiting=1, max_wait_s=5.0)
    first = model.stream(MSGS, max_tokens=3)
    waiting = model.stream(MSGS, max_tokens=3)
    out: list[str] = []
    thread = _consume_in_thread(waiting, out)
    time.sleep(0.2)
    first.close()  # the slot passes to the waiter well before its 5 s
    inner.gate.set()
    thread.join(5)
    assert out == ["a", "b", "c"] and (model.running, model.waiting) == (0, 0)


def test_rejects_bad_limits() -> None:
    with pytest.raises(ValueError):
        BoundedChatModel(ScriptedModel(), max_concurrent=0)
    with pytest.raises(ValueError):
        BoundedChatModel(ScriptedModel(), max_waiting=-1)
    with pytest.raises(ValueError):
        BoundedChatModel(ScriptedModel(), max_wait_s=0)
