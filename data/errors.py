"""Domain errors a user can cause; api/errors.py maps each to one HTTP status, once."""

from __future__ import annotations


class DomainError(Exception):
    """Base for errors with a user-facing message and a stable `code`."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    """An unknown collection, document, job..."""

    code = "not_found"


class UnauthorizedError(DomainError):
    """No API key, or one that is unknown or revoked."""

    code = "unauthorized"


class ForbiddenError(DomainError):
    """Not allowed: by the server's configuration (e.g. a folder outside the source roots),
    or to the caller's role."""

    code = "forbidden"


class ConflictError(DomainError):
    """The request clashes with the current state (e.g. same filename, other bytes)."""

    code = "conflict"


class InvalidInputError(DomainError):
    """Well-formed but unacceptable input (e.g. an empty file)."""

    code = "invalid"


class TooLargeError(DomainError):
    """An upload over the size limit."""

    code = "too_large"


class UnsupportedTypeError(DomainError):
    """A file type Grounded cannot parse, judged by its bytes."""

    code = "unsupported_type"


class EmbedderMismatchError(DomainError):
    """A collection was embedded with another model than the one running."""

    code = "embedder_mismatch"


class LeaseLostError(Exception):
    """This process no longer holds the writer lease; it must stop writing."""


class NotRenderableError(ConflictError):
    """A document whose pages cannot be shown as images: not a PDF, or one PDFium cannot
    open without the password (which is not kept after indexing) or cannot render."""

    code = "not_renderable"


class UnavailableError(DomainError):
    """The server cannot do it now (e.g. rendering ran past its time limit); may work later."""

    code = "unavailable"
