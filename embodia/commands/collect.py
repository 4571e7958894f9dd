"""``embodia collect``: record expert demonstrations as an episode dataset (parquet + card)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
ENVS = ("crafter", "metaworld")
DEFAULT_TASKS = "reach,push,drawer-close,door-open,button-press"


def collect(
    env: Annotated[str, typer.Option(help=f"which world: {', '.join(ENVS)}")] = "crafter",
    episodes: Annotated[int, typer.Option(help="collect at least this many episodes (crafter: whole worlds; "
                                          "metaworld: split evenly over --tasks)")] = 3000,
    out: Annotated[Path | None, typer.Option(help="dataset folder (parquet shards under data/, README.md card); "
                                             "default data/crafter-skills or data/metaworld")] = None,
    seed: Annotated[int, typer.Option(help="first world seed; worlds use seed, seed+1, ...")] = 0,
    tasks: Annotated[str, typer.Option(help="metaworld only: comma-separated tasks")] = DEFAULT_TASKS,
) -> None:
    """Run the scripted experts and write each successful skill call / task episode as one episode; safe to rerun."""
    if env not in ENVS:
        raise typer.BadParameter(f"unknown env {env!r}; choose from {', '.join(ENVS)}", param_hint="--env")
    if episodes < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--episodes")
    out = out or Path("data/crafter-skills" if env == "crafter" else "data/metaworld")
    command = shlex.join(["embodia", *sys.argv[1:]])
    columns = (TextColumn("[bold]collect {task.fields[world]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("episodes"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("collect", total=episodes, world="")
        if env == "crafter":
            from tools.collect_crafter import collect_crafter

            report = collect_crafter(out, episodes, seed=seed, command=command,
                                     on_world=lambda world, n: progress.update(task, completed=min(n, episodes),
                                                                               world=f"seed {world}"))
        else:
            from tools.collect_metaworld import collect_metaworld

            try:
                report = collect_metaworld(out, episodes, [t.strip() for t in tasks.split(",") if t.strip()],
                                           seed=seed, command=command,
                                           on_episode=lambda name, n: progress.update(task, completed=min(n, episodes),
                                                                                      world=name))
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--tasks") from exc
    console.print(f"{report.episodes} episodes, {report.frames} frames from seeds {report.seeds[0]}-"
                  f"{report.seeds[-1]} → {report.out}")
