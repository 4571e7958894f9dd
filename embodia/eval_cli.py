"""``embodia eval``: run an agent over a suite (``embodia eval SUITE …``) and compare runs (``embodia eval compare``).

Flags become an :class:`~evals.runner.EvalConfig`; the work happens in ``evals``.
"""

from __future__ import annotations

import shlex
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from typer.core import TyperGroup

from agents.llm import DEFAULT_SPEC
from embodia.options import AdapterOption, PerceptionOption, WorldModelOption
from embodia.text import user_text as escape  # the one escaper: markup and control characters
from evals.agents import AGENTS, with_planner
from evals.store import ResultsError
from evals.suite import SuiteError


class _SuiteFirst(TyperGroup):
    """``embodia eval SUITE …`` means ``embodia eval run SUITE …``; named subcommands stay as they are."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(cls=_SuiteFirst, no_args_is_help=True, add_completion=False,
                       help="Evaluate agents over suites of goals × seeds: `embodia eval SUITE`, "
                            "`embodia eval compare RUN RUN …`.")
console = Console()


def say(text: str, style: str | None = None) -> None:
    """Print text that may hold user input (paths, suite names, YAML) verbatim: no markup, one line per line."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


@eval_app.command("run")
def run(
    suite: Annotated[str, typer.Argument(help="suite YAML file, or a built-in suite: smoke, crafter-goals, "
                                              "crafter-open")],
    agent: Annotated[str, typer.Option(help=f"one of: {', '.join(AGENTS)}")] = "rafa",
    llm: Annotated[str, typer.Option(help="planner BACKEND:MODEL for LLM agents, or 'none' (critic only)")]
    = DEFAULT_SPEC,
    split: Annotated[str, typer.Option(help="seed split of the suite: dev, heldout")] = "dev",
    num_seeds: Annotated[int | None, typer.Option(help="use only the first N seeds of the split")] = None,
    workers: Annotated[int, typer.Option(help="parallel episode processes (each loads its own LLM)")] = 1,
    video: Annotated[str, typer.Option(help="record videos: none, failures, all")] = "none",
    out: Annotated[Path | None, typer.Option(help="run folder (default runs/<time>-eval-<suite>-<agent>)")] = None,
    resume: Annotated[bool, typer.Option(help="finish an interrupted run in --out: only missing episodes run")]
    = False,
    device: Annotated[str, typer.Option(help="torch device for the planner")] = "cpu",
    dtype: Annotated[str, typer.Option(help="planner dtype")] = "float32",
    adapter: AdapterOption = "default",
    world_model: WorldModelOption = None,
    skills: Annotated[str | None, typer.Option(help="who acts, overriding the suite: expert, expert-view "
                                               "(scripted, seeing only the frame's tiles), learned, a registered "
                                               "policy (hybrid) or a policy checkpoint folder")] = None,
    threads: Annotated[int, typer.Option(help="torch threads per episode process (0: all cores for one worker, "
                                         "cores / workers for several); 1 when other jobs share the CPU")] = 0,
    executor: Annotated[str, typer.Option(help="where episodes run: pool (local processes) or ray (a local Ray "
                                          "runtime of --workers CPUs, or the cluster at --address)")] = "pool",
    address: Annotated[str | None, typer.Option(help="--executor ray: an existing cluster, HOST:PORT, "
                                                "ray://HOST:PORT or auto")] = None,
    perception: PerceptionOption = "privileged",
    planner: Annotated[str, typer.Option(help="critic-led (the default) or llm-led: the LLM proposes, predicts and "
                                         "values futures (--agent rafa becomes rafa-llm-led)")] = "critic-led",
) -> None:
    """Run AGENT over every (goal, seed) of SUITE; write results.jsonl, report.md, plots and results.json."""
    from embodia.cli import default_out
    from evals.report import write_report
    from evals.runner import EvalConfig, EvalInterrupted, run_suite
    from evals.suite import load_suite

    try:
        agent = with_planner(agent, planner, llm)
        loaded = load_suite(suite)
        out = out or default_out("eval", f"{loaded.name} {agent}")
        config = EvalConfig(loaded, agent, llm, out, split, num_seeds, workers, video, device, dtype, adapter,
                            world_model, threads, skills=skills, executor=executor, address=address,
                            perception=perception)
        if perception == "pixels" and config.planner:
            from agents.perception import check_pixel_llm_spec

            check_pixel_llm_spec(config.planner)
        total = len(config.jobs())
        planner = config.planner and f"{config.planner} + {config.planner_adapter or 'no adapter'}"
        console.print(f"[bold]{escape(loaded.name)}[/] · agent {agent} · planner {planner or 'none'} · split {split} "
                      f"· {total} episodes · {workers} worker{'s' * (workers > 1)} → {escape(str(config.out))}")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("episodes", total=total)
            wins = [0]

            def advance(record: dict[str, Any], done: int, total: int) -> None:
                wins[0] += bool(record["success"])
                mark = "[red]raised[/]" if record["status"] == "error" else ("ok" if record["success"] else "failed")
                progress.update(task, completed=done, description=f"{record['episode']} {mark} · {wins[0]} ✓")

            records = run_suite(config, resume=resume, on_result=advance)
            progress.update(task, completed=total)
    except (SuiteError, ResultsError, ValueError) as exc:
        say(str(exc), "red")
        raise typer.Exit(2) from exc
    except EvalInterrupted as exc:
        say(f"interrupted ({exc}): {exc.saved} of {exc.total} episodes are saved in {exc.out}; the ones in flight "
            f"were dropped. Finish the run with:\n  {resume_command(exc.out)}")
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:  # the disk filled up or the folder went away mid-run: what is recorded stays
        say(f"cannot write {exc.filename or out}: {exc.strerror or exc}; finished episodes are saved. Fix it, "
            f"then finish the run with:\n  {resume_command(out)}", "red")
        raise typer.Exit(1) from None
    except BrokenProcessPool as exc:
        say(f"a worker process died ({exc}); finished episodes are saved. Finish the run with:\n  "
            f"{resume_command(config.out)}", "red")
        raise typer.Exit(1) from None
    report = write_report(config.out)
    errors = sum(r["status"] == "error" for r in records)
    console.print(f"{sum(r['success'] for r in records)}/{len(records)} episodes succeeded"
                  + (f", [red]{errors} raised[/]" if errors else "") + f"\nreport       {escape(str(report))}")


def resume_command(out: Path | None) -> str:
    """The command line that was run, with ``--out`` pinned (the default is a new timestamped folder) and
    ``--resume``: what the user types to finish an interrupted run."""
    args = [a for a in sys.argv[1:] if a not in ("--resume", "--no-resume")]
    if out is not None and not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    return shlex.join(["embodia", *args, "--resume"])


@eval_app.command("compare")
def compare(
    runs: Annotated[list[Path], typer.Argument(help="run folders written by `embodia eval SUITE`")],
    out: Annotated[Path | None, typer.Option(help="folder for compare.md/png/json (default runs/<time>-compare)")]
    = None,
) -> None:
    """Put several runs side by side: one table (Crafter score, success with CI, cost) and one plot."""
    from embodia.cli import default_out
    from evals.report import write_comparison

    try:
        path = write_comparison(runs, out or default_out("compare", "runs"))
    except (FileNotFoundError, ResultsError) as exc:
        say(str(exc), "red")
        raise typer.Exit(2) from exc
    say(path.read_text())
    say(f"comparison   {path}")
