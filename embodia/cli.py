"""``embodia`` command line: a thin shell that turns flags into config objects and calls the packages.

Exit codes: 0 success, 1 the goal failed, 2 bad input (a flag, a path, a saved session).
Every input is checked before the planner loads; text from users, models and envs is printed
through :func:`embodia.text.user_text`.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agents.llm import DEFAULT_SPEC
from agents.llm.base import LLM
from agents.rafa import RafaConfig
from embodia.commands.collect import collect
from embodia.commands.finetune import finetune_app
from embodia.commands.serve import serve
from embodia.commands.train import train_app
from embodia.console import StepPrinter
from embodia.eval_cli import eval_app
from embodia.options import (
    AdapterOption,
    DeviceOption,
    DtypeOption,
    LLMOption,
    PerceptionOption,
    SkillsOption,
    WorldModelOption,
    config_option,
)
from embodia.text import user_text

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Embodied agents: an LLM planner reasoning RAFA-style over skills in Crafter.")
app.add_typer(eval_app, name="eval")
app.add_typer(finetune_app, name="finetune")
app.command()(collect)
app.add_typer(train_app, name="train")
app.command()(serve)
console = Console()


def fail(message: str) -> typer.Exit:
    """Print ``message`` (plain text, escaped here) as the reason for exit 2, and return the exit to raise."""
    console.print(f"[red]error:[/] {user_text(message)}")
    return typer.Exit(2)


def check_out(out: Path, *, option: str = "--out", earlier: tuple[str, ...] = (), overwrite: bool = False) -> None:
    """Exit 2 unless ``out`` is a folder this process can write (or create) that holds none of the
    ``earlier`` record files, unless ``overwrite`` -- checked before the planner loads."""
    if out.exists() and not out.is_dir():
        raise fail(f"{option} {out} is a file, not a folder: pick another path")
    found = [name for name in earlier if (out / name).exists()]
    if found and not overwrite:
        raise fail(f"{option} {out} already holds an episode ({', '.join(found)}): pick another folder, "
                   "or add --overwrite to replace it")
    missing = [folder for folder in (out, *out.parents) if not folder.exists()]  # deepest first
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise fail(f"cannot write to {option} {out}: {exc.strerror or exc}") from exc
    finally:  # a probe only: a run that then stops on a bad flag leaves no empty folder behind
        for folder in missing:
            with contextlib.suppress(OSError):
                folder.rmdir()


PLANNER_DTYPES = ("float32", "bfloat16", "float16")


def check_planner_options(device: str, dtype: str) -> None:
    """Exit 2 for a --dtype or --device torch cannot use here (torch itself raises deep in the load)."""
    if dtype not in PLANNER_DTYPES:
        raise fail(f"--dtype must be one of {', '.join(PLANNER_DTYPES)}, got {dtype!r}")
    if device == "auto":
        return
    import torch

    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise fail(f"--device {device!r} is not a torch device: use cpu, cuda, cuda:N or auto") from exc
    usable = {"cpu": True, "mps": torch.backends.mps.is_available(),
              "cuda": torch.cuda.is_available() and (target.index or 0) < torch.cuda.device_count()}
    if not usable.get(target.type, False):
        raise fail(f"--device {device}: not available on this machine; use --device cpu (or auto)")


def load_llm(spec: str, device: str, dtype: str, adapter: str | None = None) -> LLM | None:
    """Build the planner LLM, or exit with the fix when it cannot load."""
    if spec.lower() == "none":
        return None
    check_planner_options(device, dtype)
    from agents.llm import make_llm
    from agents.llm.adapters import resolve_adapter

    started = time.perf_counter()
    with console.status(f"loading planner {user_text(spec)} …"):
        try:
            llm = make_llm(spec, device=device, dtype=dtype, adapter=resolve_adapter(spec, adapter))
        except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
            console.print(f"[red]cannot load planner {user_text(repr(spec))}:[/] {user_text(exc)}")
            raise typer.Exit(2) from exc
    console.print(f"[dim]planner {user_text(llm.name)} ready in {time.perf_counter() - started:.1f} s[/]")
    return llm


def check_perception(perception: str, planner: LLM | None) -> None:
    """Exit 2 when pixel perception meets a planner that takes no images, or no VLM is there to read frames."""
    if perception != "pixels":
        return
    from agents.perception import check_pixel_llm, load_reader

    try:
        check_pixel_llm(planner)
        load_reader(planner)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc


def make_config(**fields: object) -> RafaConfig:
    """RafaConfig from flags; an invalid value exits with the config's own message."""
    try:
        return RafaConfig(**fields)
    except ValueError as exc:
        console.print(f"[red]bad option:[/] {user_text(exc)}")
        raise typer.Exit(2) from exc


def check_llm_led(config: RafaConfig, llm: str) -> None:
    """Exit 2 when the llm-led planner is asked for without an LLM: it would be the critic-led one in disguise."""
    if config.planner == "llm-led" and llm.strip().lower() == "none":
        raise fail("--planner llm-led needs a language model: drop --llm none (or use --planner critic-led)")


PLANNER = config_option("agents.rafa:RafaConfig", "planner", "--planner")


def default_out(kind: str, label: str) -> Path:
    slug = "-".join("".join(ch if ch.isalnum() else " " for ch in label.lower()).split())[:40] or kind
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{slug}"
    path, n = base, 1
    while path.exists():  # two runs in the same second get two folders
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


@app.command()
def run(
    goal: Annotated[str, typer.Argument(help="what to do, in plain words, e.g. 'make a wooden pickaxe'")],
    seed: Annotated[int, typer.Option(min=0, help="world seed")] = 0,
    max_steps: Annotated[int, typer.Option(min=1, help="env-step budget for the goal")] = 10_000,
    llm: LLMOption = DEFAULT_SPEC,
    out: Annotated[Path | None, typer.Option(help="episode folder (default runs/<time>-run-<goal>)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an earlier episode in --out")] = False,
    video: Annotated[bool, typer.Option(help="write video.mp4")] = True,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float32",
    adapter: AdapterOption = "default",
    skills: SkillsOption = "expert",
    imagine: Annotated[bool, typer.Option(help="imagine each chosen skill in the learned world model first and "
                                          "revise it when imagination gives it no chance (RIG)")] = False,
    world_model: WorldModelOption = None,
    llm_weight: Annotated[float, typer.Option(help="weight of the LLM's option probability against the critic "
                                              "(below 1: tie-breaker; raise it for stronger planners)")] = 0.5,
    planner: str = PLANNER,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show state text and all candidates")] = False,
    perception: PerceptionOption = "privileged",
) -> None:
    """Pursue GOAL in a fresh Crafter world; stream each step; write episode.jsonl, summary.json, video.mp4."""
    from agents.episode import run_episode
    from agents.goals import request_too_long, resolve_goal
    from tools.episodes import LOG_FILE, SUMMARY_FILE, VIDEO_FILE

    if not goal.strip():
        raise fail("GOAL is empty: say what to do, e.g. embodia run 'make a wooden pickaxe'")
    if (too_long := request_too_long(goal)) is not None:
        raise fail(too_long)
    out = out or default_out("run", goal)
    check_out(out, earlier=(LOG_FILE, SUMMARY_FILE, VIDEO_FILE), overwrite=overwrite)
    config = make_config(max_env_steps=max_steps, llm_weight=llm_weight, skills=skills, imagination=imagine,
                         world_model=world_model or "", planner=planner, perception=perception)
    check_llm_led(config, llm)
    planner = load_llm(llm, device, dtype, adapter)
    check_perception(perception, planner)
    understood = resolve_goal(goal, planner)
    if understood.parts:  # say what was understood before acting on it
        console.print(f"[bold]understood:[/] {user_text(understood.message)}")
    result = run_episode(understood, seed=seed, out_dir=out, llm=planner, config=config, video=video,
                         step_callbacks=StepPrinter(console, verbose))
    summary = result.summary
    if summary.get("goal_achievement") is None:
        console.print(f"[yellow]{user_text(summary['reason'])}[/]")
    elif summary.get("error"):
        console.print(f"[red]episode failed:[/] {user_text(summary['reason'])}")
    for i, part in enumerate(summary.get("parts", []), 1):
        console.print(f"part {i}: {user_text(part['goal'])} — {'done' if part['success'] else 'not done'} "
                      f"({user_text(part['reason'])}, {part['env_steps']} steps)")
    console.print(f"[dim]{summary.get('env_steps', 0)} env steps · {summary['llm_calls']} LLM calls · "
                  f"median {summary['decision_ms_median']:.0f} ms/decision · {summary['wall_seconds']:.1f} s[/]")
    for name in (VIDEO_FILE, LOG_FILE, SUMMARY_FILE):
        if (out / name).exists():
            console.print(f"{name:13s} {user_text(out / name)}")
    raise typer.Exit(0 if result.success else 1)


@app.command()
def chat(
    seed: Annotated[int, typer.Option(min=0, help="world seed")] = 0,
    llm: LLMOption = DEFAULT_SPEC,
    out: Annotated[Path | None, typer.Option(help="session folder (log, video, /save target)")] = None,
    resume: Annotated[Path | None, typer.Option(help="folder written by /save to continue from")] = None,
    video: Annotated[bool, typer.Option(help="write video.mp4 of the session")] = True,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float32",
    adapter: AdapterOption = "default",
    skills: SkillsOption = "expert",
    planner: str = PLANNER,
    perception: PerceptionOption = "privileged",
) -> None:
    """Talk to an agent in one persistent world: type goals or questions; /help lists commands."""
    from agents.chat import HELP, ChatReply, ChatSession, read_saved

    if resume is not None:
        try:
            read_saved(resume)
        except (FileNotFoundError, ValueError) as exc:
            raise fail(f"cannot resume: {exc}") from exc
    out = out or default_out("chat", f"seed {seed}")
    check_out(out)
    config = make_config(skills=skills, planner=planner, perception=perception)
    check_llm_led(config, llm)
    planner = load_llm(llm, device, dtype, adapter)
    check_perception(perception, planner)
    try:
        session = ChatSession(planner, seed=seed, out_dir=out, config=config, video=video, resume=resume)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot start the session: {exc}") from exc
    printer = StepPrinter(console)
    console.print(f"[bold]embodia chat[/] — world seed {session.seed}, session folder {user_text(out)}\n{HELP}")
    try:
        while True:
            try:
                line = console.input("[bold green]you>[/] ")
            except EOFError:
                break
            try:
                for item in session.handle(line):
                    if isinstance(item, ChatReply):
                        console.print(f"[bold blue]agent>[/] {user_text(item.text)}")
                        if item.quit:
                            return
                    else:
                        printer(item)
            except KeyboardInterrupt:
                console.print("[yellow]interrupted — the world and memory are kept; type another goal[/]")
            except Exception as exc:  # one bad line never ends the session: report it, keep world and memory
                console.print(f"[red]that line failed:[/] {user_text(f'{type(exc).__name__}: {exc}', 500)} "
                              "[yellow]— the world and memory are kept; /save still works[/]")
    except KeyboardInterrupt:
        console.print()
    finally:
        session.close()
        console.print(f"[dim]session log: {user_text(out)}[/]")


if __name__ == "__main__":
    app()
