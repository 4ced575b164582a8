"""Main content of an HTML page: navigation, site headers and footers, sidebars, link lists
and other boilerplate are removed from the parsed tree before it is walked into text.

A readability-style pass over the BeautifulSoup tree, in one bottom-up count and one
top-down sweep (no recursion: deeply nested pages exist):
- a unique `<main>` (or role=main), else a unique `<article>`, that holds most of the
  page's text becomes the only part kept;
- `nav`, `aside`, site-level `header`/`footer` and their ARIA roles go, as do containers
  whose class or id names boilerplate (menu, sidebar, breadcrumbs, cookie, share, toc...)
  and blocks whose text is mostly link text (menus, link lists, navboxes);
- nothing that holds a large share of the page's plain text is ever removed, and when the
  sweep would leave next to nothing (a page that *is* a list of links), nothing is removed.
Tables and lists of the content stay: only link-dense ones go.
"""

from __future__ import annotations

import re
from typing import Any

# Site chrome by element; header/footer only outside an article, main or section.
_CHROME_TAGS = {"nav", "aside", "menu", "dialog", "button", "select"}
_PAGE_PARTS = {"header", "footer"}
_CHROME_ROLES = {
    "navigation", "complementary", "search", "menu", "menubar", "toolbar", "dialog",
    "alertdialog", "banner", "contentinfo",
}  # fmt: skip
_PAGE_ROLES = {"banner", "contentinfo"}  # like header/footer: site-level only
_SCOPES = {"article", "main", "section"}
# Whole words of class/id values (split at non-letters) that name boilerplate.
_CHROME_WORDS = {
    "nav", "navbar", "navigation", "navbox", "navlinks", "menu", "menubar", "breadcrumb",
    "breadcrumbs", "sidebar", "footer", "masthead", "banner", "cookie", "cookies", "consent",
    "gdpr", "share", "sharing", "social", "related", "advert", "advertisement", "ads", "ad",
    "sponsor", "sponsored", "promo", "newsletter", "subscribe", "popup", "modal", "skip",
    "pagination", "pager", "toc", "catlinks", "editsection", "noprint", "printfooter",
    "jump", "comments", "disqus", "widget", "tags", "taglist",
}  # fmt: skip
_CONTENT_WORDS = {"article", "body", "content", "main", "post", "entry", "story", "text"}
_CLASSED = {"div", "section", "ul", "ol", "dl", "table", "form", "span", "p", "header"}
_DENSE = {"div", "section", "ul", "ol", "dl", "table", "center", "font"}
_WORD = re.compile(r"[a-z]+")
_SPACE = re.compile(r"\s+")
LINK_DENSITY = 0.6  # a block whose text is this much link text is navigation
MAIN_SHARE = 0.5  # a <main>/<article> holding this share of the text is the page's content
PROTECT_SHARE = 0.4  # never remove a block holding this share of the page's plain text
MIN_KEPT_CHARS = 500  # below this (and half the page) the sweep is undone: a link page


class _Counts:
    """Visible characters and link characters under every tag, counted once bottom-up."""

    def __init__(self, root: Any) -> None:
        from bs4 import NavigableString, Tag
        from bs4.element import PreformattedString

        self.chars: dict[int, int] = {}
        self.links: dict[int, int] = {}
        for node in reversed(list(root.descendants)):  # every node after its descendants
            if isinstance(node, Tag):
                chars = links = 0
                for child in node.contents:
                    if isinstance(child, Tag):
                        chars += self.chars[id(child)]
                        links += self.links[id(child)]
                    elif isinstance(child, NavigableString) and not isinstance(
                        child, PreformattedString
                    ):
                        chars += len(_SPACE.sub("", str(child)))
                self.chars[id(node)] = chars
                self.links[id(node)] = chars if node.name == "a" else links
        self.total = sum(self.chars.get(id(c), 0) for c in root.contents if isinstance(c, Tag)) or 1
        self.plain_total = self.total - sum(
            self.links.get(id(c), 0) for c in root.contents if isinstance(c, Tag)
        )

    def density(self, tag: Any) -> float:
        """Share of the tag's text that sits inside links."""
        chars = self.chars.get(id(tag), 0)
        return self.links.get(id(tag), 0) / chars if chars else 0.0

    def plain(self, tag: Any) -> int:
        """Characters of the tag's text outside links."""
        return self.chars.get(id(tag), 0) - self.links.get(id(tag), 0)


def _words(tag: Any) -> set[str]:
    """Lower-case words of the tag's class and id values."""
    classes = tag.get("class") or []
    values = [*(classes if isinstance(classes, list) else [classes]), tag.get("id") or ""]
    return {w for v in values for w in _WORD.findall(str(v).lower())}


def _in_scope(tag: Any) -> bool:
    """Inside an article, main or section: a header or footer there belongs to the content."""
    return any(p.name in _SCOPES or p.get("role") == "main" for p in tag.parents)


def _is_chrome(tag: Any, counts: _Counts) -> bool:
    """Whether `tag` is navigation or boilerplate rather than content."""
    name, role = tag.name, tag.get("role")
    if name == "nav" or role in ("navigation", "search"):
        return True
    if counts.plain(tag) > PROTECT_SHARE * max(counts.plain_total, 1):
        return False  # the bulk of the page's text is never boilerplate
    if name in _CHROME_TAGS or (role in _CHROME_ROLES and role not in _PAGE_ROLES):
        return True
    if (name in _PAGE_PARTS or role in _PAGE_ROLES) and not _in_scope(tag):
        return True
    if name in _CLASSED:
        words = _words(tag)
        if words & _CHROME_WORDS and not words & _CONTENT_WORDS:
            return True
    chars = counts.chars.get(id(tag), 0)
    return name in _DENSE and chars > 0 and counts.density(tag) >= LINK_DENSITY


def _main_root(soup: Any, counts: _Counts) -> Any | None:
    """A unique <main> (or role=main), else a unique <article>, holding most of the text."""
    for found in (
        soup.find_all(lambda t: t.name == "main" or t.get("role") == "main"),
        soup.find_all("article"),
    ):
        if len(found) == 1 and counts.chars.get(id(found[0]), 0) >= MAIN_SHARE * counts.total:
            return found[0]
    return None


def _outside(root: Any) -> list[Any]:
    """Everything that is not `root`, its ancestors or its descendants."""
    out: list[Any] = []
    node = root
    while node.parent is not None and node.parent.name != "[document]":
        out.extend(s for s in node.parent.contents if s is not node)
        node = node.parent
    return out


def _sweep(start: Any, counts: _Counts) -> list[Any]:
    """Boilerplate tags under `start`, outermost only, in document order."""
    from bs4 import Tag

    found: list[Any] = []
    stack: list[Any] = [start]
    while stack:
        node = stack.pop()
        if node is not start and _is_chrome(node, counts):
            found.append(node)
            continue
        stack.extend(c for c in reversed(node.contents) if isinstance(c, Tag))
    return found


def strip_boilerplate(soup: Any) -> None:
    """Remove everything but the main content from `soup`, in place (see the module doc)."""
    from bs4 import Tag

    body = soup.body or soup
    counts = _Counts(soup)
    root = _main_root(body, counts)
    doomed = _outside(root) if root is not None else []
    doomed += _sweep(root if root is not None else body, counts)
    removed = sum(counts.chars.get(id(n), 0) for n in doomed if isinstance(n, Tag))
    if counts.total - removed < min(MIN_KEPT_CHARS, counts.total / 2):
        return  # a page of links or chrome only: keep it whole rather than keep nothing
    for node in doomed:
        if isinstance(node, Tag):
            _keep_titles(node)
            node.decompose()
        else:
            node.extract()


def _keep_titles(tag: Any) -> None:
    """Move the h1s of a removed site header out before it goes (the page's title lives
    there on many sites)."""
    if tag.name in _PAGE_PARTS or tag.get("role") == "banner":
        for h1 in tag.find_all("h1"):
            tag.insert_before(h1.extract())
