"""Read what a person sees on an HTML page: tables, messages, elements by id or class."""

from __future__ import annotations

from collections.abc import Iterator

from django.test.html import Element, parse_html


class Page:
    """A parsed HTML page."""

    def __init__(self, html: bytes | str) -> None:
        self.root = parse_html(html.decode() if isinstance(html, bytes) else html)

    def all(self, *, tag: str = "", id: str = "", cls: str = "", inside: str = "") -> list[Element]:
        """Return the elements with this tag, id and class, within element `inside` (by id)."""
        top = self.one(id=inside) if inside else self.root
        return [
            node
            for node in _walk(top)
            if (not tag or node.name == tag)
            and (not id or _attr(node, "id") == id)
            and (not cls or cls in _attr(node, "class").split())
        ]

    def one(self, *, tag: str = "", id: str = "", cls: str = "") -> Element:
        """Return the one element matching, failing if there is not exactly one."""
        found = self.all(tag=tag, id=id, cls=cls)
        assert len(found) == 1, f"{len(found)} elements match tag={tag} id={id} cls={cls}"
        return found[0]

    def table(self, id: str, part: str = "tbody") -> list[list[str]]:
        """Return the text of the cells of each row in `part` of table `id` (none: no rows)."""
        if not self.all(id=id):
            return []
        sections = [node for node in _walk(self.one(id=id)) if node.name == part]
        return [
            [text(cell) for cell in _elements(row)]
            for section in sections
            for row in _elements(section)
            if row.name == "tr"
        ]

    def messages(self) -> list[str]:
        """Return the admin's messages shown at the top of the page."""
        return [
            text(item) for ul in self.all(tag="ul", cls="messagelist") for item in _elements(ul)
        ]


def text(node: Element | str) -> str:
    """Return the visible text of `node`, whitespace collapsed."""
    if isinstance(node, str):
        return " ".join(node.split())
    if node.name in ("script", "style"):
        return ""
    parts = (text(child) for child in node.children)
    return " ".join(part for part in parts if part)


def _attr(node: Element, name: str) -> str:
    return next((value or "" for key, value in node.attributes if key == name), "")


def _walk(node: Element) -> Iterator[Element]:
    yield node
    for child in _elements(node):
        yield from _walk(child)


def _elements(node: Element) -> list[Element]:
    return [child for child in node.children if isinstance(child, Element)]
