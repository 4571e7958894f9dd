"""``embodia train …``: training commands; ``vla`` here, other trainers add one function each.

Each trainer is a function decorated with ``@train_app.command("<name>")`` that turns flags into
its package's config dataclass and calls the package's ``train(cfg)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from vla.train import TrainConfig

# Options every VLA trainer (`embodia train vla`, `embodia finetune vla`) takes, in one wording.
VlaDataOption = Annotated[Path, typer.Option("--data", help="episode dataset folder (embodia collect)")]
StepsOption = Annotated[int, typer.Option(help="optimizer steps")]
BatchSizeOption = Annotated[int, typer.Option(help="rows per step")]
VlaSeedOption = Annotated[int, typer.Option("--seed", help="seed for weights, batches, noise")]
VlaResumeOption = Annotated[bool, typer.Option("--resume", help="continue from OUT/checkpoint")]
CheckpointEveryOption = Annotated[int, typer.Option(help="steps between checkpoints")]
EvalSeedsOption = Annotated[str, typer.Option(help="held-out world seeds for the final closed-loop skill eval, "
                                              "'' to skip")]
EvalBudgetOption = Annotated[int, typer.Option(help="env steps per skill attempt in the eval")]
WarmupOption = Annotated[int, typer.Option(help="linear warm-up steps (then cosine decay to 10%)")]
MaxRowsOption = Annotated[int, typer.Option(help="train and validate on the dataset's first N rows only (0 = all)")]
ValEveryOption = Annotated[int, typer.Option(help="every N-th episode is held out for validation")]

train_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Train policies and models.")
console = Console()


def parse_seeds(text: str) -> tuple[int, ...]:
    """'1000-1002,1010' -> (1000, 1001, 1002, 1010); '' -> ()."""
    seeds: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        seeds += range(int(lo), int(hi or lo) + 1)
    return tuple(seeds)


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console)


def vla_config(build: Callable[[], TrainConfig], verb: str) -> TrainConfig:
    """``build()``; a missing dataset exits 2, a bad flag value is a usage error."""
    try:
        return build()
    except FileNotFoundError as exc:
        console.print(f"[red]cannot {verb}:[/] {exc}")
        raise typer.Exit(2) from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def run_vla_training(cfg: TrainConfig, verb: str) -> dict[str, Any]:
    """``vla.train.train(cfg)`` under a rich progress bar; data that does not fit the policy exits 2."""
    from tools.episode_dataset import MissingColumnsError
    from tools.train_state import CorruptCheckpointError, ResumeMismatchError
    from vla.base import SpaceMismatchError
    from vla.train import train

    with progress_bar() as progress:
        task = progress.add_task(f"{verb} vla", total=cfg.steps, info="loading")

        def on_step(step: int, info: dict[str, float]) -> None:
            progress.update(task, completed=step, info=f"loss {info['loss']:.3f} ar acc {info['ar_accuracy']:.2f}")

        try:
            return train(cfg, on_step=on_step)
        except (FileNotFoundError, MissingColumnsError, SpaceMismatchError, ResumeMismatchError,
                CorruptCheckpointError) as exc:
            console.print(f"[red]cannot {verb}:[/] {exc}")
            raise typer.Exit(2) from exc


@train_app.command("vla")
def vla(
    data: VlaDataOption = Path("data/crafter-skills"),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/vla/hybrid-crafter"),
    steps: StepsOption = 3000,
    batch_size: BatchSizeOption = 64,
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 1e-3,
    warmup_steps: WarmupOption = 100,
    max_rows: MaxRowsOption = 0,
    val_every: ValEveryOption = 20,
    seed: VlaSeedOption = 0,
    resume: VlaResumeOption = False,
    checkpoint_every: CheckpointEveryOption = 500,
    eval_seeds: EvalSeedsOption = "1000-1002",
    eval_budget: EvalBudgetOption = 150,
    d_model: Annotated[int, typer.Option(help="transformer width")] = 64,
    n_layers: Annotated[int, typer.Option(help="transformer blocks")] = 3,
    chunk_size: Annotated[int, typer.Option(help="actions per inference call")] = 1,
    num_inference_steps: Annotated[int, typer.Option(help="DDIM steps at inference")] = 4,
    ar_loss_weight: Annotated[float, typer.Option(help="AR loss weight (0: diffusion-only training)")] = 1.0,
    diffusion_loss_weight: Annotated[float, typer.Option(help="diffusion loss weight (0: AR-only)")] = 1.0,
    max_instruction_len: Annotated[int, typer.Option(help="instruction bytes the policy reads")] = 20,
    num_bins: Annotated[int, typer.Option(help="continuous actions: AR bins per action dimension")] = 256,
) -> None:
    """Train HybridVLA on an episode dataset (runs under `accelerate launch` too); ends with an eval.

    The state size and the action space (discrete indices or continuous vectors) are read from the data.
    """
    from vla.data import dataset_spaces
    from vla.hybrid import HybridConfig
    from vla.train import TrainConfig

    def build() -> TrainConfig:
        policy = HybridConfig(d_model=d_model, n_layers=n_layers, chunk_size=chunk_size,
                              num_inference_steps=num_inference_steps, ar_loss_weight=ar_loss_weight,
                              diffusion_loss_weight=diffusion_loss_weight, seed=seed,
                              max_instruction_len=max_instruction_len, num_bins=num_bins, **dataset_spaces(data))
        return TrainConfig(data=str(data), out=str(out), policy=policy, steps=steps, batch_size=batch_size, lr=lr,
                           warmup_steps=warmup_steps, seed=seed, resume=resume, checkpoint_every=checkpoint_every,
                           eval_seeds=parse_seeds(eval_seeds), eval_budget=eval_budget, max_rows=max_rows,
                           val_every=val_every)

    metrics = run_vla_training(vla_config(build, "train"), "train")
    console.print(f"validation: {metrics.get('validation')}")
    success = metrics.get("mean_task_success") or metrics.get("mean_skill_success")
    console.print(f"mean {'task' if 'mean_task_success' in metrics else 'skill'} success: {success} · "
                  f"{metrics['train_samples_per_s']} samples/s · policy and metrics.json in {out}")
