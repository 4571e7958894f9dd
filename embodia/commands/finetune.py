"""``embodia finetune``: LoRA fine-tuning runs: ``planner`` (``agents.finetune``) and ``vla`` (the same LoRA
machinery on HybridVLA's SmolLM2 backbone, trained by ``vla.train``'s loop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from embodia.commands.train import (
    BatchSizeOption,
    CheckpointEveryOption,
    EvalBudgetOption,
    EvalSeedsOption,
    MaxRowsOption,
    StepsOption,
    ValEveryOption,
    VlaDataOption,
    VlaResumeOption,
    VlaSeedOption,
    WarmupOption,
)

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
    from agents.finetune import StepLog, TrainConfig
    from agents.planner_data import TraceError
    from agents.planner_tuning import PlannerFinetuneConfig, finetune_planner, merge_adapter
    from tools.lora import LoraSettings

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


@finetune_app.command()
def vla(
    data: VlaDataOption = Path("data/crafter-skills"),
    out: Annotated[Path, typer.Option(help="output folder: policy (config + LoRA/new weights only), checkpoint/, "
                                      "metrics.json")] = Path("runs/vla/hybrid-smollm2"),
    steps: StepsOption = 100,
    batch_size: BatchSizeOption = 8,
    lr: Annotated[float, typer.Option(help="peak learning rate (LoRA and the new projections/heads)")] = 1e-3,
    warmup_steps: WarmupOption = 10,
    rank: Annotated[int, typer.Option(help="LoRA rank (attention projections, alpha = 2 x rank)")] = 8,
    top_layers: Annotated[int, typer.Option(help="LoRA on the last N used layers only (0 = all)")] = 0,
    llm_layers: Annotated[int, typer.Option(help="use SmolLM2's first N decoder layers (0 = all 30)")] = 0,
    max_rows: MaxRowsOption = 0,
    val_every: ValEveryOption = 20,
    seed: VlaSeedOption = 0,
    checkpoint_every: CheckpointEveryOption = 25,
    resume: VlaResumeOption = False,
    eval_seeds: EvalSeedsOption = "",
    eval_budget: EvalBudgetOption = 100,
    speed_actions: Annotated[int, typer.Option(help="policy.act calls timed at batch 1 after training "
                                               "(0 = skip)")] = 10,
) -> None:
    """Train HybridVLA with the embedded SmolLM2 as its backbone (peft LoRA) on an episode dataset."""
    import resource

    from embodia.commands.train import parse_seeds, run_vla_training, vla_config
    from vla.data import dataset_spaces
    from vla.hybrid import HybridConfig
    from vla.train import TrainConfig

    def build() -> TrainConfig:
        policy = HybridConfig(backbone="smollm2", llm_layers=llm_layers, lora_rank=rank, lora_top_layers=top_layers,
                              seed=seed, **dataset_spaces(data))
        return TrainConfig(data=str(data), out=str(out), policy=policy, steps=steps, batch_size=batch_size, lr=lr,
                           warmup_steps=warmup_steps, seed=seed, val_every=val_every,
                           checkpoint_every=checkpoint_every, eval_seeds=parse_seeds(eval_seeds),
                           eval_budget=eval_budget, resume=resume, max_rows=max_rows)

    metrics = run_vla_training(vla_config(build, "fine-tune"), "finetune")
    if speed_actions:
        metrics["actions_per_s_batch1"] = _actions_per_second(out, data, speed_actions)
    metrics["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    from tools.episodes import write_json_atomic

    write_json_atomic(out / "metrics.json", metrics)
    console.print(f"validation: {metrics.get('validation')}")
    console.print(f"{metrics['train_samples_per_s']} samples/s · {metrics.get('actions_per_s_batch1')} actions/s at "
                  f"batch 1 · peak RSS {metrics['peak_rss_mb']} MB · policy and metrics.json in {out}")


def _actions_per_second(out: Path, data: Path, n: int) -> float:
    """``policy.act`` calls per second at batch 1 on the dataset's first rows, the saved policy reloaded."""
    from evals.bench_vla import actions_per_second
    from vla.data import load_frames
    from vla.hybrid import HybridVLAPolicy

    policy = HybridVLAPolicy.from_pretrained(out)
    frames = load_frames(data, 1, policy.config.max_instruction_len)
    obs = {"image": frames.image[:n].numpy(), "state": frames.state[:n].numpy()}
    return round(actions_per_second(policy, obs, n, frames.texts[0]), 2)


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
