"""``embodia finetune``: LoRA fine-tuning runs (``planner`` now; ``vla`` reuses ``agents.finetune``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console()
finetune_app = typer.Typer(no_args_is_help=True, help="LoRA fine-tuning runs with peft (CPU by default; "
                           "the same command runs under `accelerate launch -m embodia finetune …`).")


def _seeds(spec: str | None) -> list[int] | None:
    if not spec:
        return None
    from evals.suite import parse_seeds

    try:
        return list(parse_seeds(spec))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--heldout-seeds") from exc


@finetune_app.command()
def planner(
    data: Annotated[list[Path], typer.Option(help="episode folders (searched for episode.jsonl) or a dataset.jsonl; "
                                             "repeatable")],
    out: Annotated[Path, typer.Option(help="adapter dir (checkpoints/, dataset.jsonl, metrics.json inside)")],
    base: Annotated[str, typer.Option(help="base model BACKEND:MODEL")] = "transformers:smollm2",
    steps: Annotated[int, typer.Option(help="optimizer steps")] = 40,
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 2e-3,
    warmup_steps: Annotated[int, typer.Option(help="linear warm-up steps (then cosine decay to 10%)")] = 4,
    batch_tokens: Annotated[int, typer.Option(help="tokens per step (examples are packed, no padding)")] = 1024,
    rank: Annotated[int, typer.Option(help="LoRA rank (attention projections)")] = 8,
    top_layers: Annotated[int, typer.Option(help="adapt only the last N layers (0 = all): cheaper backward")] = 6,
    seed: Annotated[int, typer.Option(help="data order and initialisation seed")] = 0,
    heldout_seeds: Annotated[str | None, typer.Option(help="world seeds held out, e.g. 16-19 "
                                                      "(default: the highest fifth)")] = None,
    eval_examples: Annotated[int, typer.Option(help="held-out decisions whose accuracy is measured")] = 40,
    eval_every: Annotated[int, typer.Option(help="steps between held-out loss evaluations")] = 20,
    save_every: Annotated[int, typer.Option(help="steps between checkpoints")] = 10,
    rationale: Annotated[bool, typer.Option(help="target = skill + its plan (else the skill only)")] = True,
    shuffle_options: Annotated[bool, typer.Option(help="shuffle the options in training prompts")] = True,
    all_episodes: Annotated[bool, typer.Option(help="also learn from failed episodes")] = False,
    measure: Annotated[bool, typer.Option(help="measure held-out accuracy before and after")] = True,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint in --out")] = False,
    merge: Annotated[bool, typer.Option(help="also write base+adapter as one safetensors model in OUT/merged")] = False,
) -> None:
    """Train a LoRA adapter for the planner LLM on the agent's own decisions (prompt → chosen subgoal)."""
    from agents.finetune import LoraSettings, StepLog, TrainConfig
    from agents.planner_data import TraceError
    from agents.planner_tuning import PlannerFinetuneConfig, finetune_planner, merge_adapter

    train = TrainConfig(steps=steps, lr=lr, warmup_steps=warmup_steps, batch_tokens=batch_tokens,
                        eval_every=eval_every, save_every=save_every, seed=seed,
                        lora=LoraSettings(rank=rank, alpha=2 * rank, top_layers=top_layers))
    config = PlannerFinetuneConfig([str(d) for d in data], str(out), base=base, heldout_seeds=_seeds(heldout_seeds),
                                   rationale=rationale, shuffle_options=shuffle_options,
                                   successful_only=not all_episodes, eval_examples=eval_examples, train=train)
    columns = (TextColumn("[bold]finetune planner"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("train", total=steps, info="loading model and measuring the base model …")

        def on_step(log: StepLog) -> None:
            info = f"loss {log.loss:.3f} · {log.tokens / log.seconds:.0f} tok/s"
            if log.eval_loss is not None:
                info += f" · held-out loss {log.eval_loss:.3f}"
                progress.console.print(f"step {log.step}: train loss {log.loss:.3f}, held-out loss {log.eval_loss:.3f}")
            progress.update(task, completed=log.step, info=info)

        try:
            metrics = finetune_planner(config, resume=resume, on_step=on_step, measure=measure)
        except (TraceError, FileNotFoundError, ValueError) as exc:
            console.print(f"[red]cannot fine-tune:[/] {exc}")
            raise typer.Exit(2) from exc
    _report(metrics)
    if merge:
        console.print(f"merged model: {merge_adapter(out, out / 'merged', base)}")
    console.print(f"adapter: {out}  (use it: embodia run \"…\" --adapter {out})")


def _report(metrics: dict) -> None:
    table = Table(title="held-out next-subgoal accuracy")
    table.add_column("options")
    table.add_column("base", justify="right")
    table.add_column("adapter", justify="right")
    for name, value in metrics.get("adapter_accuracy", {}).items():
        table.add_row(name, f"{metrics['base_accuracy'][name]:.0%}", f"{value:.0%}")
    if table.rows:
        console.print(table)
    console.print(json.dumps({k: metrics[k] for k in ("examples", "train")}))
