"""What a caller may see: the collections of its key (access rules are applied from this)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """The collections a caller may read and write; `collections=None` means all of them.

    Repositories and the Retriever take it as a required keyword, so a new caller that
    forgets it fails to type-check instead of seeing everything.
    """

    collections: frozenset[str] | None = None
    key_id: int | None = None

    @classmethod
    def everything(cls) -> Scope:
        """Every collection: the admin (and, until keys exist, every caller)."""
        return cls(collections=None, key_id=None)

    @classmethod
    def only(cls, names: Iterable[str], key_id: int | None = None) -> Scope:
        """Just these collections."""
        return cls(collections=frozenset(names), key_id=key_id)

    def allows(self, collection: str) -> bool:
        """Whether `collection` is in the scope."""
        return self.collections is None or collection in self.collections
