"""``embodia train world-model``: collect Crafter episodes if needed, then train the RSSM world model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

console = Console()


def train_world_model(
    data: Annotated[Path, typer.Option(help="episode shards (world_models.data) or a parquet episode dataset")] = Path(
        "data/world_model/train"),
    out: Annotated[Path, typer.Option(help="run folder: checkpoint/ (latest, resumable) and model/ (final)")] = Path(
        "runs/world_model/tiny"),
    preset: Annotated[str, typer.Option(help="model size: tiny, small, base")] = "tiny",
    steps: Annotated[int, typer.Option(help="optimiser updates in total")] = 1500,
    batch_size: Annotated[int, typer.Option(help="sequences per update")] = 8,
    seq_len: Annotated[int, typer.Option(help="frames per sequence (0: the preset's)")] = 0,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    checkpoint_every: Annotated[int, typer.Option(help="updates between checkpoints")] = 50,
    seed: Annotated[int, typer.Option(help="training seed")] = 0,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoint")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda, auto")] = "cpu",
    mixed_precision: Annotated[str, typer.Option(help="no, bf16, fp16")] = "no",
    state_scale: Annotated[float, typer.Option(help="loss weight of the inventory/achievement head "
                                                    "(0: the preset's, or the checkpoint's on --resume)")] = 0.0,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch default)")] = 1,
    collect: Annotated[int, typer.Option(help="when DATA holds no episodes, first collect this many "
                                               "(expert/random mix, 500 steps each)")] = 60,
) -> None:
    """Train the DreamerV3-style RSSM world model on Crafter episodes (collected first if DATA is empty)."""
    from world_models.data import CollectConfig
    from world_models.data import collect as collect_episodes
    from world_models.train import NonFiniteLossError, TrainConfig, train

    try:
        cfg = TrainConfig(data=data, out=out, preset=preset, steps=steps, batch_size=batch_size, seq_len=seq_len,
                          lr=lr, checkpoint_every=checkpoint_every, seed=seed, resume=resume, device=device,
                          mixed_precision=mixed_precision, state_scale=state_scale,
                          threads=threads)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not any(data.glob("*.npz")) and not any(data.glob("data/*.parquet")):
        if collect < 1:
            console.print(f"[red]no episodes under {data}[/] (pass --collect N to collect them)")
            raise typer.Exit(2)
        with Progress(console=console) as progress:
            task = progress.add_task(f"collecting {collect} episodes", total=collect)
            ticks = iter(lambda: progress.advance(task), object())
            collect_episodes(CollectConfig(out=data, episodes=collect), progress=ticks)
    try:
        metrics = train(cfg, console=console)
    except NonFiniteLossError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(3) from exc
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]cannot train:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"done: loss {metrics['loss']:.1f}, {metrics['seconds_per_update']:.2f} s/update → {out / 'model'}")
