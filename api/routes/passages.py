"""/v1/documents/{id}/passage and /pages/{n}/image: the source a citation points at."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import ContainerDep, IdPath, ScopeDep, SessionDep
from api.errors import responses
from api.schemas import PassageOut, PassagePageOut
from data import repositories as repo
from data.errors import ConflictError, NotFoundError, NotRenderableError, UnavailableError
from data.models import Document
from data.pagination import MAX_ID
from ingest.sourceview import (
    DEFAULT_WIDTH,
    FORMATS,
    MAX_WIDTH,
    MIN_WIDTH,
    PDF,
    clamp_width,
    passage_of,
)

router = APIRouter(prefix="/v1/documents", tags=["documents"])
# Bumped when rendering changes, so browsers drop images made the old way.
_RENDERER = "r1"
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="offset in the document's text")]
_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {media: {} for media in FORMATS.values()},
        "description": "The page, no highlight drawn",
        "headers": {
            "ETag": {"description": "content, page, width and format", "schema": {"type": "string"}}
        },
    },
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    **responses(404, 409, 422, 503),
}


def _indexed(doc: Document) -> str:
    """The content hash the document's stored text was extracted from."""
    if doc.indexed_hash is None or doc.text is None:
        raise ConflictError(f"document {doc.id} has no text yet (status {doc.status})")
    return doc.indexed_hash


@router.get("/{document_id}/passage", responses=responses(404, 409, 422))
def get_passage(
    document_id: IdPath,
    start: Offset,
    end: Offset,
    session: SessionDep,
    container: ContainerDep,
    scope: ScopeDep,
) -> PassageOut:
    """The text [start:end] (a citation's doc_start/doc_end) with ~600 characters around it,
    its pages and heading, and for a PDF its boxes on every page it touches."""
    doc = repo.get_document(session, document_id, scope=scope)
    content = _indexed(doc)
    passage = passage_of(doc.text or "", doc.layout, start, end)
    pages: list[PassagePageOut] = []
    reason: str | None = None
    if doc.media_type != PDF:
        reason = "only PDF pages are rendered; the text is the source"
    else:
        try:
            found = container.viewer.boxes(container.blobs.path_for(content), passage.spans)
        except (NotRenderableError, UnavailableError, ConflictError) as exc:
            reason = exc.message  # the text still shows the passage
        else:
            pages = [
                PassagePageOut(page=p.page, width=p.width, height=p.height, boxes=p.boxes)
                for p in found
            ]
    return PassageOut(
        document_id=doc.id,
        filename=doc.filename,
        media_type=doc.media_type,
        page_count=passage.page_count if passage.page_count is not None else doc.pages,
        page_start=passage.page_start,
        page_end=passage.page_end,
        page_label=passage.page_label,
        heading=passage.heading,
        start=passage.start,
        end=passage.end,
        before=passage.before,
        text=passage.text,
        after=passage.after,
        pages=pages,
        renderable=reason is None,
        unrenderable_reason=reason,
    )


def _etag_matches(header: str | None, etag: str) -> bool:
    """Whether If-None-Match names `etag` (weakly compared, as RFC 9110 says for it) or *."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


@router.get("/{document_id}/pages/{page}/image", response_class=Response, responses=_IMAGE)
def get_page_image(
    document_id: IdPath,
    page: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    session: SessionDep,
    container: ContainerDep,
    scope: ScopeDep,
    width: Annotated[
        int, Query(ge=1, le=MAX_ID, description=f"pixels, clamped to {MIN_WIDTH}..{MAX_WIDTH}")
    ] = DEFAULT_WIDTH,
    format: Literal["webp", "png"] = "webp",
) -> Response:
    """A PDF page rendered server-side (lossless WebP by default), for the boxes of
    .../passage to be laid over; cacheable per key (ETag, Cache-Control: private)."""
    doc = repo.get_document(session, document_id, scope=scope)
    content = _indexed(doc)
    if doc.media_type != PDF:
        raise NotRenderableError(f"document {doc.id} is {doc.media_type}; only PDF pages render")
    count = (doc.layout or {}).get("page_count") or doc.pages or 0
    if page > count:
        raise NotFoundError(f"document {doc.id} has {count} pages; there is no page {page}")
    width = clamp_width(width)
    etag = f'"{content[:24]}-{page}-{width}-{format}-{_RENDERER}"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"private, max-age={container.settings.viewer.image_max_age_s}",
        # Another key in the same browser must ask again (it may not read this document).
        "Vary": "Authorization",
    }
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    image = container.viewer.render(container.blobs.path_for(content), page, width, format)
    return Response(image, media_type=FORMATS[format], headers=headers)
