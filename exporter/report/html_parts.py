"""Small HTML building blocks of the report: escaping, tables, images, badges. Pure module."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

from exporter.report import fmt


def e(value: object) -> str:
    """HTML-escape anything (quotes included)."""
    return html.escape(str(value), quote=True)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Header cells are escaped here; row cells must be escaped HTML already."""
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{e(alt)}" src="data:image/png;base64,{data}">'


def nodata(text: str) -> str:
    return f'<p class="nodata">No data: {e(text)}.</p>'


def num(text: str) -> str:
    if text == fmt.NO_DATA:
        return f'<span class="nodata">{e(text)}</span>'
    return e(text)


def badge(word: str) -> str:
    return f'<span class="v v-{e(word.replace(" ", "-"))}">{e(word)}</span>'
