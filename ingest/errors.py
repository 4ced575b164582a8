"""Errors a parser raises; the worker maps them to a document's `error_code`."""

from __future__ import annotations

from data.types import ErrorCode


class ParseError(Exception):
    """A document could not be turned into text; `code` says why."""

    code: ErrorCode = ErrorCode.CORRUPT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EncryptedError(ParseError):
    """Password-protected and no (or a wrong) password was given."""

    code = ErrorCode.ENCRYPTED


class NoTextError(ParseError):
    """The file parsed but holds no extractable text (e.g. a scan without a text layer)."""

    code = ErrorCode.NO_TEXT


class CorruptError(ParseError):
    """The file is damaged or not what its type claims."""

    code = ErrorCode.CORRUPT


class ParseTimeoutError(ParseError):
    """The parser ran past the configured time limit and was killed."""

    code = ErrorCode.TIMEOUT


class TooLargeError(ParseError):
    """The extracted text is longer than the configured limit (ingest.max_chars)."""

    code = ErrorCode.TOO_LARGE


class UnsafeArchiveError(ParseError):
    """A zip package (DOCX, PPTX, XLSX) is over the size, member-count or ratio limits."""

    code = ErrorCode.UNSAFE_ARCHIVE
