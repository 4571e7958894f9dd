"""Command-line options shared by several commands (one wording, one default everywhere)."""

from typing import Annotated

import typer

LLMOption = Annotated[str, typer.Option("--llm", help="BACKEND:MODEL, e.g. transformers:smollm2, or 'none' "
                                        "(critic only, no language model)")]
DeviceOption = Annotated[str, typer.Option(help="torch device for the planner: cpu, cuda, auto")]
DtypeOption = Annotated[str, typer.Option(help="planner dtype: float32, bfloat16, float16")]
SkillsOption = Annotated[str, typer.Option(help="expert (scripted skills) or learned (the shipped HybridVLA policy)")]
AdapterOption = Annotated[str, typer.Option(help="planner LoRA adapter dir (from `embodia finetune planner`); "
                                           "'default': the shipped one for the embedded model; 'none': base model")]
WorldModelOption = Annotated[str | None, typer.Option(help="world-model checkpoint folder imagination loads "
                                                     "(from `embodia train world-model`; default: the shipped one)")]
