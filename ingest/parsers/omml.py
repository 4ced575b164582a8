"""Office Math (OMML, `m:oMath`) as linear text, close to Word's own linear format.

`a/b` becomes `(a)/(b)`, a superscript `x^(2)`, a root `√(x)`, an n-ary operator
`∑_(i=1)^(n) x_(i)`, a matrix `[a, b; c, d]`. Single characters are not bracketed
(`x^2`), so a retriever and a reader see the familiar short form.
"""

from __future__ import annotations

from typing import Any

M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
_W_T = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}t"


def _val(el: Any, path: str, default: str) -> str:
    """The m:val of the property `path` under `el`, or `default`."""
    prop = el.find(path)
    if prop is None:
        return default
    return str(prop.get(f"{M}val", default))


def _group(text: str) -> str:
    """`text` bracketed unless it is one character (or already empty)."""
    return text if len(text) <= 1 else f"({text})"


def _arg(el: Any, name: str) -> str:
    """Linear text of the child argument `m:<name>` of `el` (empty when absent)."""
    child = el.find(f"{M}{name}")
    return linear(child) if child is not None else ""


def _script(el: Any) -> str:
    """Sub- and superscripts of `el` appended as _(...) and ^(...)."""
    sub, sup = _arg(el, "sub"), _arg(el, "sup")
    return (f"_{_group(sub)}" if sub else "") + (f"^{_group(sup)}" if sup else "")


def _fraction(el: Any) -> str:
    return f"{_group(_arg(el, 'num'))}/{_group(_arg(el, 'den'))}"


def _radical(el: Any) -> str:
    degree = _arg(el, "deg")
    return f"√({degree}&{_arg(el, 'e')})" if degree else f"√{_group(_arg(el, 'e'))}"


def _nary(el: Any) -> str:
    op = _val(el, f"{M}naryPr/{M}chr", "∫")
    return f"{op}{_script(el)} {_arg(el, 'e')}".rstrip()


def _delimited(el: Any) -> str:
    begin = _val(el, f"{M}dPr/{M}begChr", "(")
    end = _val(el, f"{M}dPr/{M}endChr", ")")
    sep = _val(el, f"{M}dPr/{M}sepChr", "|")
    return begin + sep.join(linear(e) for e in el.iterchildren(f"{M}e")) + end


def _matrix(el: Any) -> str:
    rows = [
        ", ".join(linear(e) for e in row.iterchildren(f"{M}e")) for row in el.iterchildren(f"{M}mr")
    ]
    return "[" + "; ".join(rows) + "]"


def _accent(el: Any) -> str:
    return _arg(el, "e") + _val(el, f"{M}accPr/{M}chr", "\u0302")


def _limit(el: Any, mark: str) -> str:
    return f"{_group(_arg(el, 'e'))}{mark}{_group(_arg(el, 'lim'))}"


def _run(el: Any) -> str:
    return "".join(t.text or "" for t in el.iter(f"{M}t", _W_T))


_HANDLERS = {
    f"{M}r": _run,
    f"{M}f": _fraction,
    f"{M}sSup": lambda el: _group(_arg(el, "e")) + _script(el),
    f"{M}sSub": lambda el: _group(_arg(el, "e")) + _script(el),
    f"{M}sSubSup": lambda el: _group(_arg(el, "e")) + _script(el),
    f"{M}sPre": lambda el: _script(el) + _group(_arg(el, "e")),
    f"{M}rad": _radical,
    f"{M}nary": _nary,
    f"{M}d": _delimited,
    f"{M}m": _matrix,
    f"{M}eqArr": lambda el: "\n".join(linear(e) for e in el.iterchildren(f"{M}e")),
    f"{M}func": lambda el: f"{_arg(el, 'fName')}{_group(_arg(el, 'e')) or '()'}",
    f"{M}acc": _accent,
    f"{M}bar": lambda el: _arg(el, "e") + "\u0305",
    f"{M}limLow": lambda el: _limit(el, "_"),
    f"{M}limUpp": lambda el: _limit(el, "^"),
    f"{M}groupChr": lambda el: _arg(el, "e"),
    f"{M}box": lambda el: _arg(el, "e"),
    f"{M}borderBox": lambda el: _arg(el, "e"),
    f"{M}phant": lambda el: "",
}


def linear(el: Any) -> str:
    """Linear text of an OMML element (m:oMathPara, m:oMath or any part of one)."""
    if el.tag == f"{M}oMathPara":
        return "\n".join(linear(m) for m in el.iterchildren(f"{M}oMath"))
    handler = _HANDLERS.get(el.tag)
    if handler is not None:
        return str(handler(el))
    # Containers (m:oMath, m:e, m:num, ...) and unknown elements: their children in order;
    # property elements (m:*Pr) hold no text.
    return "".join(linear(child) for child in el.iterchildren() if not _is_property(child))


def _is_property(el: Any) -> bool:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag.endswith("Pr") or tag.startswith("{http://schemas.openxmlformats.org/wordp")


def is_math(el: Any) -> bool:
    """True for an m:oMath or m:oMathPara element."""
    return el.tag in (f"{M}oMath", f"{M}oMathPara")
