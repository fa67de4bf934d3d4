"""Plain text from docstrings: what ``mcer-bench list`` and ``describe`` print.

Docstrings use reStructuredText inline markup (````code````, ``:func:`name```, ``*emphasis*``);
a terminal shows it raw, so it is removed here, and a summary is the docstring's whole first
sentence, never a line cut mid-sentence.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":[a-zA-Z_]+(?::[a-zA-Z_]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")  # :func:`x`, :class:`~a.B`
_LITERAL = re.compile(r"``(.+?)``")
_INTERPRETED = re.compile(r"(?<![`\w])`([^`]+)`(?![`\w])")
_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?![\w*])")
# a full stop that does not end a sentence: abbreviations and initials
_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "etc.", "vs.", "cf.", "approx.", "resp.", "Fig.", "Eq.", "No.")


def plain(text: str) -> str:
    """``text`` without reStructuredText inline markup (roles, literals, emphasis)."""
    text = _ROLE.sub(lambda m: m.group(1).split(".")[-1] if m.group(0).count("~") else m.group(1), text)
    text = _LITERAL.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    return _EMPHASIS.sub(r"\1", text)


def first_paragraph(doc: str) -> str:
    """The first paragraph of ``doc`` (lines up to the first blank one), joined by spaces."""
    lines = []
    for line in doc.strip().splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    return " ".join(lines)


def first_sentence(doc: str) -> str:
    """The whole first sentence of ``doc``'s first paragraph, as plain text.

    A sentence ends at ``.``, ``!`` or ``?`` followed by a space and a capital letter, a
    quote or an opening bracket, or at the end of the paragraph; abbreviations such as
    ``e.g.`` and ``et al.`` do not end it. A paragraph with no such end is returned whole.
    """
    para = plain(first_paragraph(doc))
    for match in re.finditer(r"[.!?](?=\s+[A-Z(\"'])|[.!?]$", para):
        end = match.end()
        head = para[:end]
        if any(head.endswith(a) for a in _ABBREVIATIONS) or re.search(r"(?:^|\s)[A-Z]\.$", head):
            continue
        return head.strip()
    return para.strip()
