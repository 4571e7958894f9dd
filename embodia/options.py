"""Command-line options shared by several commands (one wording, one default everywhere).

Options that set a config dataclass's field take their default and help from that dataclass
(:func:`config_option`), so the CLI cannot drift from the config the package documents.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

LLMOption = Annotated[str, typer.Option("--llm", help="BACKEND:MODEL, e.g. transformers:smollm2, or 'none' "
                                        "(critic only, no language model)")]
DeviceOption = Annotated[str, typer.Option(help="torch device for the planner: cpu, cuda, auto")]
DtypeOption = Annotated[str, typer.Option(help="planner dtype: float32, bfloat16, float16")]
SkillsOption = Annotated[str, typer.Option(help="expert (scripted skills), expert-view (the same, seeing only the "
                                           "frame's tiles), learned (the shipped HybridVLA policy), a "
                                           "registered policy (hybrid, univla, rth) or a policy checkpoint folder")]
AdapterOption = Annotated[str, typer.Option(help="planner LoRA adapter dir (from `embodia finetune planner`); "
                                           "'default': the shipped one for the embedded model; 'none': base model")]
PerceptionOption = Annotated[str, typer.Option(help="what the planner's belief is built from: privileged (the env's "
                                               "state) or pixels (the frame alone, read by the VLM's encoder; needs "
                                               "--llm transformers:embodia-vlm or none)")]
WorldModelOption = Annotated[str | None, typer.Option(help="world-model checkpoint folder imagination loads "
                                                     "(from `embodia train world-model`; default: the shipped one)")]


# --- options derived from config dataclasses ---
@dataclass(frozen=True)
class ConfigField:
    """One field of a config dataclass as the CLI sees it: its default (MISSING if none is a literal) and help."""

    default: Any
    help: str


def _source_file(module: str) -> Path:
    """The ``.py`` file of ``module`` found without importing it (a trainer's module pulls in torch)."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level package here imports nothing heavy
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"cannot find package {top!r}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder.joinpath(*rest)
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"


def _args_section(doc: str) -> dict[str, str]:
    """``name: text`` entries of a Google-style ``Args:`` section, continuation lines joined."""
    entries: dict[str, str] = {}
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Args:"), None)
    if start is None:
        return entries
    indent, name = None, None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        match = re.match(r"\s*(\w+):\s*(.*)", line)
        if depth == indent and match:
            name = match.group(1)
            entries[name] = match.group(2).strip()
        elif name is not None:
            entries[name] += " " + line.strip()
    return entries


def _literal_default(value: ast.expr | None) -> Any:
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "field":
        value = next((k.value for k in value.keywords if k.arg == "default"), None)
    try:
        return ast.literal_eval(value) if value is not None else MISSING
    except ValueError:
        return MISSING  # a default_factory or an expression: the command states its own


@functools.cache
def config_fields(target: str) -> dict[str, ConfigField]:
    """The fields of the dataclass ``"package.module:Class"`` (and its bases), read from its source.

    The CLI must start fast and the trainers' modules import torch, so the class is read, not imported;
    ``tests/test_cli.py`` checks the result against the imported class.
    """
    module, name = target.split(":")
    tree = ast.parse(_source_file(module).read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    imported = {alias.asname or alias.name: n.module for n in tree.body if isinstance(n, ast.ImportFrom)
                for alias in n.names}
    fields: dict[str, ConfigField] = {}
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in imported:
            fields.update(config_fields(f"{imported[base.id]}:{base.id}"))
    docs = _args_section(ast.get_docstring(node) or "")
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            field_name = stmt.target.id
            inherited = fields.get(field_name)
            fields[field_name] = ConfigField(_literal_default(stmt.value),
                                             docs.get(field_name, inherited.help if inherited else ""))
    return fields


def config_default(target: str, name: str) -> Any:
    """The literal default of field ``name`` of ``target`` (see :func:`config_fields`)."""
    default = config_fields(target)[name].default
    if default is MISSING:
        raise ValueError(f"{target}.{name} has no literal default; give the option one")
    return default


def config_option(target: str, name: str, *param_decls: str, default: Any = MISSING, help: str | None = None,
                  **kwargs: Any) -> Any:
    """A typer option for field ``name`` of the config dataclass ``target``: its default and its help.

    ``default`` replaces the dataclass default where a command is a preset (``finetune vla`` trains fewer
    steps than ``train vla``); ``help`` is needed only where the field has no ``Args:`` entry.
    """
    field = config_fields(target)[name]
    value = field.default if default is MISSING else default
    if value is MISSING:
        raise ValueError(f"{target}.{name} has no literal default; give the option one")
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        from tools.seeds import format_seeds

        value = format_seeds(value)
    text = (help or field.help).replace("``", "`")
    if not text:
        raise ValueError(f"{target}.{name} has no Args: entry; give the option help")
    return typer.Option(value, *param_decls, help=text, **kwargs)
