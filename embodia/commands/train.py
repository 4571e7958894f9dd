"""``embodia train …``: one function per trainer (``vla``, ``world-model``), each decorated with
``@train_app.command("<name>")``, turning flags into its package's config dataclass and calling the
package's ``train(cfg)``.

Every flag that sets a config field is ``config_option(CONFIG, "field")``: its default and help are the
dataclass's own, so ``--help`` cannot drift from the config the package documents.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from embodia.options import config_default, config_option
from embodia.text import user_text as escape  # the one escaper: markup and control characters

if TYPE_CHECKING:
    from vla.train import TrainConfig

#: The config dataclasses the flags come from (read without importing torch: see ``embodia.options``).
VLA = "vla.train:TrainConfig"
HYBRID = "vla.hybrid.configuration_hybrid:HybridConfig"
UNIVLA = "vla.univla.configuration_univla:UniVLAConfig"
WORLD_MODEL = "world_models.train:TrainConfig"
DAGGER = "vla.dagger:DaggerConfig"

train_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Train policies and models.")
console = Console()


def seeds_option(text: str) -> tuple[int, ...]:
    """``--eval-seeds`` ('1000-1002,1010'; '' skips the eval) through ``tools.seeds``; a bad one is a usage error."""
    from tools.seeds import parse_seeds

    try:
        return parse_seeds(text, allow_empty=True)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--eval-seeds") from exc


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console)


def vla_config(build: Callable[[], TrainConfig], verb: str) -> TrainConfig:
    """``build()``; a missing dataset exits 2, a bad flag value is a usage error."""
    try:
        return build()
    except FileNotFoundError as exc:
        console.print(f"[red]cannot {verb}:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def run_vla_training(cfg: TrainConfig, verb: str) -> dict[str, Any]:
    """``vla.train.train(cfg)`` under a rich progress bar; data that does not fit the policy, a damaged
    checkpoint or a resume under another config exits 2."""
    from tools.episode_dataset import MissingColumnsError
    from tools.train_state import CheckpointWriteError, CorruptCheckpointError, ResumeMismatchError
    from vla.base import CheckpointError, SpaceMismatchError
    from vla.train import train

    with progress_bar() as progress:
        task = progress.add_task(f"{verb} vla", total=cfg.steps, info="loading")

        def on_step(step: int, info: dict[str, float]) -> None:
            accuracy = info.get("ar_accuracy", info.get("action_accuracy", 0.0))  # rth names it action_accuracy
            progress.update(task, completed=step, info=f"loss {info['loss']:.3f} ar acc {accuracy:.2f}")

        try:
            return train(cfg, on_step=on_step)
        except (FileNotFoundError, MissingColumnsError, SpaceMismatchError, ResumeMismatchError,
                CorruptCheckpointError, CheckpointError) as exc:
            console.print(f"[red]cannot {verb}:[/] {escape(str(exc))}")
            raise typer.Exit(2) from exc
        except CheckpointWriteError as exc:  # the machine's fault, not the flags': exit 1, the last checkpoint stands
            console.print(f"[red]stopped:[/] {escape(str(exc))}")
            raise typer.Exit(1) from exc


@train_app.command("vla")
def vla(
    policy: str = typer.Option("hybrid", "--policy", help="policy family to train, a `vla.registry` name (hybrid); "
                               "flags below that its config lacks are ignored"),  # vla.registry.DEFAULT_POLICY
    data: Path = config_option(VLA, "data", "--data"),
    out: Path = config_option(VLA, "out"),
    steps: int = config_option(VLA, "steps"),
    batch_size: int = config_option(VLA, "batch_size"),
    lr: float = config_option(VLA, "lr"),
    warmup_steps: int = config_option(VLA, "warmup_steps"),
    max_rows: int = config_option(VLA, "max_rows"),
    val_every: int = config_option(VLA, "val_every"),
    seed: int = config_option(VLA, "seed", "--seed"),
    resume: bool = config_option(VLA, "resume", "--resume"),
    checkpoint_every: int = config_option(VLA, "checkpoint_every"),
    eval_seeds: str = config_option(VLA, "eval_seeds", help="held-out world seeds for the final closed-loop "
                                    "skill eval, e.g. 1000-1002,1010; '' to skip"),
    eval_budget: int = config_option(VLA, "eval_budget"),
    d_model: int = config_option(HYBRID, "d_model"),
    n_layers: int = config_option(HYBRID, "n_layers"),
    chunk_size: int = config_option(HYBRID, "chunk_size"),
    num_inference_steps: int = config_option(HYBRID, "num_inference_steps"),
    ar_loss_weight: float = config_option(HYBRID, "ar_loss_weight"),
    diffusion_loss_weight: float = config_option(HYBRID, "diffusion_loss_weight"),
    max_instruction_len: int = config_option(HYBRID, "max_instruction_len"),
    num_bins: int = config_option(HYBRID, "num_bins"),
    vision: str = config_option(HYBRID, "vision"),
    patch_size: int = config_option(HYBRID, "patch_size"),
    freeze_vision: bool = config_option(HYBRID, "freeze_vision"),
    vision_init: str = config_option(VLA, "vision_init"),
    unlabelled_data: list[Path] = typer.Option([], "--unlabelled-data", help="univla: extra action-free episode "
                                               "datasets (random, failed rollouts) for the latent action model"),
    label_fraction: float = config_option(UNIVLA, "label_fraction"),
    lam_checkpoint: str = config_option(UNIVLA, "lam_checkpoint"),
) -> None:
    """Train a VLA policy (HybridVLA by default) on an episode dataset (runs under `accelerate launch` too); ends
    with an eval.

    The state size and the action space (discrete indices or continuous vectors) are read from the data.
    """
    from dataclasses import fields

    from vla.data import dataset_spaces
    from vla.registry import entry
    from vla.train import TrainConfig

    def build() -> TrainConfig:
        config_class = entry(policy).config_class()  # an unknown name: CheckpointError, a usage error
        flags = dict(d_model=d_model, n_layers=n_layers, chunk_size=chunk_size, num_inference_steps=num_inference_steps,
                     ar_loss_weight=ar_loss_weight, diffusion_loss_weight=diffusion_loss_weight,
                     max_instruction_len=max_instruction_len, num_bins=num_bins, vision=vision,
                     patch_size=patch_size, freeze_vision=freeze_vision,
                     unlabelled_data=tuple(str(d) for d in unlabelled_data), label_fraction=label_fraction,
                     lam_checkpoint=lam_checkpoint)
        known = {f.name for f in fields(config_class)}
        config = config_class(**{k: v for k, v in flags.items() if k in known}, seed=seed, **dataset_spaces(data))
        return TrainConfig(data=str(data), out=str(out), policy=config, steps=steps, batch_size=batch_size, lr=lr,
                           warmup_steps=warmup_steps, seed=seed, resume=resume, checkpoint_every=checkpoint_every,
                           eval_seeds=seeds_option(eval_seeds), eval_budget=eval_budget, max_rows=max_rows,
                           val_every=val_every, vision_init=vision_init)

    metrics = run_vla_training(vla_config(build, "train"), "train")
    console.print(f"validation: {metrics.get('validation')}")
    success = metrics.get("mean_task_success") or metrics.get("mean_skill_success")
    console.print(f"mean {'task' if 'mean_task_success' in metrics else 'skill'} success: {success} · "
                  f"{metrics['train_samples_per_s']} samples/s · policy and metrics.json in {out}")


@train_app.command("dagger")
def dagger(
    out: Path = config_option(DAGGER, "out"),
    init: str = config_option(DAGGER, "init"),
    base_data: str = config_option(DAGGER, "base_data"),
    skills: str = typer.Option(",".join(config_default(DAGGER, "skills")), help="comma-separated skills to "
                               "roll out, relabel and evaluate"),
    rounds: int = config_option(DAGGER, "rounds"),
    worlds: int = config_option(DAGGER, "worlds"),
    first_world: int = config_option(DAGGER, "first_world"),
    beta: float = config_option(DAGGER, "beta"),
    budget: int = config_option(DAGGER, "budget"),
    steps: int = config_option(DAGGER, "steps"),
    lr: float = config_option(DAGGER, "lr"),
    warmup_steps: int = config_option(DAGGER, "warmup_steps"),
    batch_size: int = config_option(DAGGER, "batch_size"),
    on_policy_fraction: float = config_option(DAGGER, "on_policy_fraction"),
    eval_seeds: str = config_option(DAGGER, "eval_seeds"),
    eval_budget: int = config_option(DAGGER, "eval_budget"),
    seed: int = config_option(DAGGER, "seed"),
    sight: str = config_option(DAGGER, "sight"),
    resume: bool = config_option(DAGGER, "resume", "--resume"),
) -> None:
    """DAgger rounds for the learned Crafter skills: roll the policy out mixed with the expert, label every visited
    state with the expert's action, aggregate, fine-tune, repeat; ends with the per-round table (`vla.dagger`)."""
    from rich.table import Table

    from tools.train_state import CorruptCheckpointError, ResumeMismatchError
    from vla.base import CheckpointError, SpaceMismatchError
    from vla.dagger import DaggerConfig, run_dagger

    def build() -> DaggerConfig:
        return DaggerConfig(out=str(out), init=init, base_data=base_data,
                            skills=tuple(s.strip() for s in skills.split(",") if s.strip()), rounds=rounds,
                            worlds=worlds, first_world=first_world, beta=beta, budget=budget, steps=steps, lr=lr,
                            warmup_steps=warmup_steps, batch_size=batch_size,
                            on_policy_fraction=on_policy_fraction, eval_seeds=seeds_option(eval_seeds),
                            eval_budget=eval_budget, seed=seed, sight=sight, resume=resume)

    cfg = vla_config(build, "run dagger")
    with progress_bar() as progress:
        tasks: dict[int, Any] = {}

        def on_progress(round_no: int, phase: str, done: int, total: int) -> None:
            if round_no not in tasks:
                tasks[round_no] = progress.add_task(f"round {round_no}", total=total, info=phase)
            progress.update(tasks[round_no], completed=done, total=total, info=phase)

        try:
            result = run_dagger(cfg, on_progress)
        except (FileNotFoundError, FileExistsError, ResumeMismatchError, CheckpointError, CorruptCheckpointError,
                SpaceMismatchError) as exc:
            console.print(f"[red]cannot run dagger:[/] {escape(str(exc))}")
            raise typer.Exit(2) from exc
    rows = result["table"]
    columns = list(dict.fromkeys(c for row in rows for c in row))
    table = Table(title=f"per-skill success on held-out worlds {cfg.eval_seeds} (attempts)")
    for column in columns:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
    console.print(table)
    console.print(f"round table and config in {out / 'dagger.json'}; round r's policy in {out}/rounds/round-RR/policy")


@train_app.command("world-model")
def world_model(
    data: Path = config_option(WORLD_MODEL, "data", default=Path("data/world_model/train")),
    out: Path = config_option(WORLD_MODEL, "out", default=Path("runs/world_model/tiny")),
    preset: str = config_option(WORLD_MODEL, "preset"),
    steps: int = config_option(WORLD_MODEL, "steps"),
    batch_size: int = config_option(WORLD_MODEL, "batch_size"),
    seq_len: int = config_option(WORLD_MODEL, "seq_len"),
    lr: float = config_option(WORLD_MODEL, "lr"),
    grad_clip: float = config_option(WORLD_MODEL, "grad_clip"),
    checkpoint_every: int = config_option(WORLD_MODEL, "checkpoint_every"),
    seed: int = config_option(WORLD_MODEL, "seed"),
    resume: bool = config_option(WORLD_MODEL, "resume"),
    device: str = config_option(WORLD_MODEL, "device"),
    mixed_precision: str = config_option(WORLD_MODEL, "mixed_precision"),
    state_scale: float = config_option(WORLD_MODEL, "state_scale"),
    threads: int = config_option(WORLD_MODEL, "threads"),
    collect: int = typer.Option(60, help="when DATA holds no episodes, first collect this many "
                                         "(expert/random mix, 500 steps each)"),
) -> None:
    """Train the DreamerV3-style RSSM world model on Crafter episodes (collected first if DATA is empty)."""
    from tools.train_state import CheckpointWriteError, CorruptCheckpointError
    from world_models.data import CollectConfig
    from world_models.data import collect as collect_episodes
    from world_models.train import NonFiniteLossError, TrainConfig, train

    try:
        cfg = TrainConfig(data=data, out=out, preset=preset, steps=steps, batch_size=batch_size, seq_len=seq_len,
                          lr=lr, grad_clip=grad_clip, checkpoint_every=checkpoint_every, seed=seed, resume=resume,
                          device=device, mixed_precision=mixed_precision, state_scale=state_scale, threads=threads)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not any(data.glob("*.npz")) and not any(data.glob("data/*.parquet")):
        if collect < 1:
            console.print(f"[red]no episodes under {escape(str(data))}[/] (pass --collect N to collect them)")
            raise typer.Exit(2)
        with Progress(console=console) as progress:
            task = progress.add_task(f"collecting {collect} episodes", total=collect)
            ticks = iter(lambda: progress.advance(task), object())
            collect_episodes(CollectConfig(out=data, episodes=collect), progress=ticks)
    try:
        metrics = train(cfg, console=console)
    except NonFiniteLossError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(3) from exc
    except (FileNotFoundError, ValueError, CorruptCheckpointError) as exc:
        console.print(f"[red]cannot train:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except CheckpointWriteError as exc:
        console.print(f"[red]stopped:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.print(f"done: loss {metrics.get('loss', float('nan')):.1f}, "
                  f"{metrics['seconds_per_update']:.2f} s/update → {out / 'model'}")
