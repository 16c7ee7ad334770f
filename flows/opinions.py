"""Approval opinions as plain text: the OA stores them as HTML (``remarkHtml``); the CRM shows notes as text.

Parsed with the standard library's ``html.parser`` (not regular expressions): tags are dropped, character and
entity references are unescaped (``&lt;`` stays a visible ``<``, never becomes a tag), block elements (``p``,
``div``, ``br``, ``li``, table rows) become line breaks, ``script``/``style`` contents are dropped, and runs of
spaces inside a line are collapsed.  Chinese text passes through untouched (the parser works on ``str``).
"""

from __future__ import annotations

from html.parser import HTMLParser

BLOCK_TAGS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
                        "ul", "ol", "table"})
HIDDEN_TAGS = frozenset({"script", "style", "head", "title"})


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden += 1
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def opinion_text(html_text: str | None) -> str:
    """The text of an opinion: no tags, entities unescaped, one line per paragraph, no blank lines at the ends."""
    if not html_text:
        return ""
    collector = _TextCollector()
    collector.feed(html_text)
    collector.close()
    lines = [" ".join(line.replace("\xa0", " ").split()) for line in "".join(collector.parts).splitlines()]
    return "\n".join(line for line in lines if line)
