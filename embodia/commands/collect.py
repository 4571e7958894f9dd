"""``embodia collect``: record episodes as an episode dataset (parquet + card), for policies or the world model."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from evals.executors import Executor
    from world_models.data import CollectConfig, EpisodeDriver

console = Console()
ENVS = ("crafter", "metaworld")
PURPOSES = ("policy", "world-model")
DEFAULT_TASKS = "reach,push,drawer-close,door-open,button-press"
#: --episodes when not given: expert skill episodes for policies, whole 500-step worlds for the world model.
DEFAULT_EPISODES = {"policy": 3000, "world-model": 60}


def collect(
    env: Annotated[str, typer.Option(help=f"which world: {', '.join(ENVS)}")] = "crafter",
    purpose: Annotated[str, typer.Option("--for", help="policy: each successful expert skill call / task episode "
                                         "is one episode; world-model: whole Crafter episodes of skills mixed with "
                                         "random actions (or the agent), each step labelled with its skill"
                                         )] = "policy",
    episodes: Annotated[int | None, typer.Option(help="collect at least this many episodes (policy, crafter: whole "
                                                 "worlds; metaworld: split evenly over --tasks); default 3000 for "
                                                 "policy, 60 for world-model")] = None,
    out: Annotated[Path | None, typer.Option(help="dataset folder (parquet shards under data/, README.md card); "
                                             "default data/crafter-skills, data/metaworld or data/world_model/train"
                                             )] = None,
    seed: Annotated[int | None, typer.Option(help="first world seed; worlds use seed, seed+1, ... "
                                             "(default 0; world-model: 10000)")] = None,
    tasks: Annotated[str, typer.Option(help="metaworld only: comma-separated tasks")] = DEFAULT_TASKS,
    driver: Annotated[str, typer.Option(help="world-model only: mix (random feasible skills + random actions) or "
                                        "agent (the critic-only RAFA agent over the open-ended goal order)")] = "mix",
    steps: Annotated[int, typer.Option(help="world-model only: env steps per episode")] = 500,
    epsilon: Annotated[float, typer.Option(help="world-model only: chance a skill's action is swapped for a random "
                                           "one")] = 0.1,
    blind: Annotated[float, typer.Option(help="world-model only (mix): chance a segment attempts a skill whose "
                                         "requirements are missing")] = 0.0,
    blind_budget: Annotated[int, typer.Option(help="world-model only: env steps of one such attempt")] = 3,
    workers: Annotated[int, typer.Option(help="world-model only: shards collected in parallel")] = 1,
    executor: Annotated[str, typer.Option(help="world-model only: where shards run, pool or ray (a local Ray "
                                          "runtime of --workers CPUs, or the cluster at --address)")] = "pool",
    address: Annotated[str | None, typer.Option(help="--executor ray: an existing cluster, HOST:PORT, "
                                                "ray://HOST:PORT or auto")] = None,
    sight: Annotated[str, typer.Option(help="policy, crafter only: what the expert reads, map (the whole world) or "
                                       "view (only the 9x7 tiles of the frame, a teacher a pixel policy can "
                                       "imitate)")] = "map",
) -> None:
    """Record episodes as a dataset: expert demonstrations for policies, or world-model training episodes; safe to
    rerun (shards on disk are kept)."""
    if env not in ENVS:
        raise typer.BadParameter(f"unknown env {env!r}; choose from {', '.join(ENVS)}", param_hint="--env")
    if purpose not in PURPOSES:
        raise typer.BadParameter(f"unknown purpose {purpose!r}; choose from {', '.join(PURPOSES)}", param_hint="--for")
    if purpose == "world-model" and env != "crafter":
        raise typer.BadParameter("the world model is trained on Crafter; use --env crafter", param_hint="--env")
    episodes = DEFAULT_EPISODES[purpose] if episodes is None else episodes
    if episodes < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--episodes")
    command = shlex.join(["embodia", *sys.argv[1:]])
    if purpose == "world-model":
        _collect_world_model(out or Path("data/world_model/train"), episodes, seed, driver, steps, epsilon, blind,
                             blind_budget, (executor, workers, address))
        return
    if (executor, workers, address) != ("pool", 1, None):
        raise typer.BadParameter("parallel collection (--workers, --executor, --address) is built for --for "
                                 "world-model only; policy datasets number episodes in collection order",
                                 param_hint="--executor")
    if sight not in ("map", "view") or (sight != "map" and (env, purpose) != ("crafter", "policy")):
        raise typer.BadParameter(f"--sight is map or view, and view is for --env crafter --for policy; got {sight!r}",
                                 param_hint="--sight")
    out = out or Path("data/crafter-skills" if env == "crafter" else "data/metaworld")
    seed = seed or 0
    columns = (TextColumn("[bold]collect {task.fields[world]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("episodes"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("collect", total=episodes, world="")
        if env == "crafter":
            from tools.collect_crafter import collect_crafter

            report = collect_crafter(out, episodes, seed=seed, command=command, sight=sight,
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


def _collect_world_model(out: Path, episodes: int, seed: int | None, driver: str, steps: int, epsilon: float,
                         blind: float, blind_budget: int, parallel: tuple[str, int, str | None]) -> None:
    """World-model episodes (``world_models.data``); the agent driver and the executor are composed here, above
    the layers they come from. Shards are independent jobs (episode index = world seed), so a parallel collection
    writes the same files as a sequential one."""
    from world_models.data import TRAIN_SEED, CollectConfig
    from world_models.data import collect as collect_episodes

    try:
        cfg = CollectConfig(out=out, episodes=episodes, steps=steps, seed=TRAIN_SEED if seed is None else seed,
                            epsilon=epsilon, driver=driver, blind=blind, blind_budget=blind_budget)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    drive = None
    if driver == "agent":
        from agents.collect import drive_with_agent as drive
    executor_kind, workers, address = parallel
    if (executor_kind, workers) != ("pool", 1) or address is not None:
        from evals.executors import ExecutorError, make_executor

        try:
            pool = make_executor(executor_kind, workers, address=address, threads=1)
            if executor_kind == "ray":  # Ray absent, or no cluster at --address: said before any work
                from evals.executors import check_address, import_ray

                import_ray()
                if address is not None:
                    check_address(address)
        except ExecutorError as exc:
            raise typer.BadParameter(str(exc), param_hint="--executor") from exc
        with Progress(console=console) as progress:
            task = progress.add_task(f"collecting {episodes} world-model episodes ({driver}, {workers} workers)",
                                     total=episodes)
            paths = _collect_in_parallel(cfg, pool, drive, lambda n: progress.advance(task, n))
        console.print(f"{episodes} episodes in {len(paths)} shards from seeds {cfg.seed}-{cfg.seed + episodes - 1} → "
                      f"{out}")
        return
    with Progress(console=console) as progress:
        task = progress.add_task(f"collecting {episodes} world-model episodes ({driver})", total=episodes)
        paths = collect_episodes(cfg, progress=iter(lambda: progress.advance(task), object()), drive=drive)
    console.print(f"{episodes} episodes in {len(paths)} shards from seeds {cfg.seed}-{cfg.seed + episodes - 1} → {out}")


def _shard_job(cfg: CollectConfig, drive: EpisodeDriver | None, shard: tuple[Path, list[int]]) -> Path:
    """One parallel job (picklable): collect and write the shard ``(path, seeds)``."""
    from world_models.data import collect_shard

    return collect_shard(cfg, shard[0], shard[1], drive)


def _collect_in_parallel(cfg: CollectConfig, executor: Executor, drive: EpisodeDriver | None,
                         advance: Callable[[int], None]) -> list[Path]:
    """The missing shards on ``executor``, then the card; a shard whose worker died twice is named in the error
    raised once the others are on disk (a rerun collects just it)."""
    import functools

    from evals.executors import WorkerLost
    from world_models.data import collect, shard_plan

    done = [seeds for path, seeds in shard_plan(cfg) if path.exists()]
    advance(sum(map(len, done)))
    missing = [(path, seeds) for path, seeds in shard_plan(cfg) if not path.exists()]
    lost = []
    for (path, seeds), value in executor.map(functools.partial(_shard_job, cfg, drive), missing):
        if isinstance(value, WorkerLost):
            lost.append(f"{path.name} ({value.error})")
        advance(len(seeds))
    if lost:
        console.print(f"[red]{len(lost)} shard(s) not collected: {'; '.join(lost)}[/]; rerun the same command to "
                      "collect them (the shards on disk are kept)", markup=True)
        raise typer.Exit(1)
    return collect(cfg, drive=drive)  # every shard exists now: this writes the metadata and the card only
