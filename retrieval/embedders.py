"""Which embedder serves which collection: the default, or a model folder a rebuild chose."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from data.errors import EmbedderMismatchError
from data.protocols import Embedder


class EmbedderRegistry:
    """Loads each local model folder once and checks it is the model a collection recorded."""

    def __init__(self, default: Embedder, factory: Callable[[str], Embedder]) -> None:
        self._default = default
        self._factory = factory
        self._loaded: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> Embedder:
        """The configured model."""
        return self._default

    def load(self, path: str | None) -> Embedder:
        """The model in folder `path`, loaded on first use; the default for None."""
        if not path:
            return self._default
        key = str(Path(path).resolve())
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = self._factory(key)
            return self._loaded[key]

    def for_collection(self, model_id: str | None, path: str | None) -> Embedder:
        """The embedder a collection needs; refuses when the model there is another one."""
        try:
            emb = self.load(path)
        except (OSError, ValueError) as exc:
            msg = f"the collection's model at {path!r} can't be loaded: {exc}"
            raise EmbedderMismatchError(msg) from exc
        if model_id and emb.model_id != model_id:
            raise EmbedderMismatchError(
                f"the collection was indexed with {model_id!r} but this server embeds with "
                f"{emb.model_id!r}; configure that model or rebuild the collection"
            )
        return emb
