"""Prompt templates (Jinja2) and their loader: the only place prompt text lives.

Each template is a file ``templates/<name>.jinja`` with ``{% block system %}`` and
``{% block user %}`` blocks; :func:`render_messages` turns it into chat messages.
Rendering is strict (``StrictUndefined``) so a missing variable fails loudly and
names the template, instead of silently producing a broken prompt.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("prompts", "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)


class PromptError(ValueError):
    """A template is missing or failed to render; the message names the template."""


def _template(name: str) -> jinja2.Template:
    try:
        return _ENV.get_template(f"{name}.jinja")
    except jinja2.TemplateNotFound as exc:
        raise PromptError(f"no prompt template {name!r}; available: {', '.join(available())}") from exc


def available() -> list[str]:
    return sorted(p.name.removesuffix(".jinja") for p in resources.files("prompts").joinpath("templates").iterdir()
                  if p.name.endswith(".jinja"))


def render_messages(name: str, **variables: Any) -> list[dict[str, str]]:
    """Render a template's ``system`` and ``user`` blocks into chat messages."""
    template = _template(name)
    messages = []
    for role in ("system", "user"):
        if role not in template.blocks:
            continue
        try:
            text = "".join(template.blocks[role](template.new_context(variables))).strip()
        except jinja2.UndefinedError as exc:
            raise PromptError(f"prompt {name!r}: {exc.message}") from exc
        messages.append({"role": role, "content": text})
    if not messages:
        raise PromptError(f"prompt {name!r} has neither a system nor a user block")
    return messages


def render_text(name: str, **variables: Any) -> str:
    """Render a plain (block-less) template, e.g. a reflection sentence."""
    try:
        return _template(name).render(**variables).strip()
    except jinja2.UndefinedError as exc:
        raise PromptError(f"prompt {name!r}: {exc.message}") from exc


@cache
def version(name: str) -> str:
    """Short content hash of a template, stored in traces so fine-tuning data names its prompt."""
    source = resources.files("prompts").joinpath("templates", f"{name}.jinja").read_bytes()
    return hashlib.sha256(source).hexdigest()[:12]
