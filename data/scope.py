"""What a caller may see and do: the collections of its key, its key id and its role."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What a key may do, each role including the ones before it."""

    READER = "reader"  # search, chat, read documents, its own conversations
    EDITOR = "editor"  # also upload, delete, sources and jobs
    ADMIN = "admin"  # also keys, collections, rebuild

    def at_least(self, other: Role) -> bool:
        """Whether this role includes everything `other` may do."""
        order = list(Role)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True)
class Scope:
    """The collections a caller may read and write; `collections=None` means all of them.

    Repositories and the Retriever take it as a required keyword, so a new caller that
    forgets it fails to type-check instead of seeing everything. `key_id=None` (no key:
    authentication off, or the CLI) sees every conversation; a key sees only its own.
    """

    collections: frozenset[str] | None = None
    key_id: int | None = None
    role: Role = Role.ADMIN

    @classmethod
    def everything(cls) -> Scope:
        """Every collection, as an admin without a key (the CLI, or authentication off)."""
        return cls(collections=None, key_id=None, role=Role.ADMIN)

    @classmethod
    def only(
        cls, names: Iterable[str], key_id: int | None = None, role: Role = Role.ADMIN
    ) -> Scope:
        """Just these collections."""
        return cls(collections=frozenset(names), key_id=key_id, role=role)

    def allows(self, collection: str) -> bool:
        """Whether `collection` is in the scope."""
        return self.collections is None or collection in self.collections
