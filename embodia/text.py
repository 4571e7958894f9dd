"""The one place where text the program did not write itself is made safe for the terminal.

Anything a user typed, a model generated or an env/exception reported can contain rich markup
(``[/x]`` raises ``MarkupError``; ``[link=file:///…]`` renders as a link), ANSI escapes that move the
cursor or recolour the screen, or other control characters. Every print of such text through rich
goes through :func:`user_text`, so it is shown literally and can neither crash nor restyle the console.
"""

from __future__ import annotations

import re

from rich.markup import escape

#: C0/C1 control characters except tab and newline, DEL, and the bidi overrides that reorder a line.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def user_text(value: object, limit: int | None = None) -> str:
    """``value`` as rich-markup-safe text: markup escaped, control characters shown as ``\\xNN``.

    With ``limit``, text longer than ``limit`` characters is cut and says how much was left out.
    """
    text = str(value)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} more characters)"
    return escape(_UNSAFE.sub(_visible, text))
