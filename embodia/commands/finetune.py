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

from agents.llm import DEFAULT_SPEC
from embodia.commands.train import HYBRID, VLA
from embodia.options import config_option
from embodia.text import user_text

#: The planner's training config; `finetune planner` is a preset of it for the 135M planner on a 2-core CPU.
PLANNER = "agents.finetune:TrainConfig"
LORA = "tools.lora:LoraSettings"

console = Console()
finetune_app = typer.Typer(no_args_is_help=True, help="LoRA fine-tuning runs with peft (CPU by default; "
                           "the same command runs under `accelerate launch -m embodia finetune …`).")


def _seeds(spec: str | None) -> list[int] | None:
    if not spec:
        return None
    from tools.seeds import parse_seeds

    try:
        return list(parse_seeds(spec))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--heldout-seeds") from exc


@finetune_app.command()
def planner(
    data: Annotated[list[Path], typer.Option(help="episode folders (searched for episode.jsonl) or a dataset.jsonl; "
                                             "repeatable")],
    out: Annotated[Path, typer.Option(help="adapter dir (checkpoints/, dataset.jsonl, metrics.json inside)")],
    base: Annotated[str, typer.Option(help="base model BACKEND:MODEL")] = DEFAULT_SPEC,
    steps: int = config_option(PLANNER, "steps", default=40),
    lr: float = config_option(PLANNER, "lr", default=2e-3),
    warmup_steps: int = config_option(PLANNER, "warmup_steps", default=4),
    batch_tokens: int = config_option(PLANNER, "batch_tokens", default=1024),
    rank: int = config_option(LORA, "rank", help="LoRA rank (attention projections, alpha = 2 x rank)"),
    top_layers: int = config_option(LORA, "top_layers", default=6,
                                    help="adapt only the last N layers (0 = all): cheaper backward"),
    seed: int = config_option(PLANNER, "seed"),
    heldout_seeds: Annotated[str | None, typer.Option(help="world seeds held out, e.g. 16-19 "
                                                      "(default: the highest fifth)")] = None,
    eval_examples: Annotated[int, typer.Option(help="held-out decisions whose accuracy is measured")] = 40,
    eval_every: int = config_option(PLANNER, "eval_every", default=20),
    save_every: int = config_option(PLANNER, "save_every", default=10),
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
    from tools.train_state import CheckpointWriteError

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
            console.print(f"[red]cannot fine-tune:[/] {user_text(exc)}")
            raise typer.Exit(2) from exc
        except CheckpointWriteError as exc:  # disk full or similar: exit 1, the last checkpoint stands
            console.print(f"[red]stopped:[/] {user_text(exc)}")
            raise typer.Exit(1) from exc
    _report(metrics)
    if merge:
        console.print(f"merged model: {merge_adapter(out, out / 'merged', base)}")
    console.print(f"adapter: {out}  (use it: embodia run \"…\" --adapter {out})")


@finetune_app.command()
def vla(
    data: Path = config_option(VLA, "data", "--data"),
    out: Path = config_option(VLA, "out", default=Path("runs/vla/hybrid-smollm2"),
                              help="output folder: policy (config + LoRA/new weights only), checkpoint/, metrics.json"),
    steps: int = config_option(VLA, "steps", default=100),
    batch_size: int = config_option(VLA, "batch_size", default=8),
    lr: float = config_option(VLA, "lr"),
    warmup_steps: int = config_option(VLA, "warmup_steps", default=10),
    rank: int = config_option(HYBRID, "lora_rank", "--rank"),
    top_layers: int = config_option(HYBRID, "lora_top_layers", "--top-layers"),
    llm_layers: int = config_option(HYBRID, "llm_layers"),
    max_rows: int = config_option(VLA, "max_rows"),
    val_every: int = config_option(VLA, "val_every"),
    seed: int = config_option(VLA, "seed", "--seed"),
    checkpoint_every: int = config_option(VLA, "checkpoint_every", default=25),
    resume: bool = config_option(VLA, "resume", "--resume"),
    eval_seeds: str = config_option(VLA, "eval_seeds", default="", help="held-out world seeds for the final "
                                    "closed-loop skill eval, e.g. 1000-1002,1010; '' to skip"),
    eval_budget: int = config_option(VLA, "eval_budget", default=100),
    speed_actions: Annotated[int, typer.Option(help="policy.act calls timed at batch 1 after training "
                                               "(0 = skip)")] = 10,
    interventions: Annotated[Path | None, typer.Option(
        help="RT-H corrections: a chat session folder (or its interventions/ dataset) written by /motion; "
        "fine-tunes the motion query of --from on them (--steps, --lr, --batch-size, --out apply)")] = None,
    init: Annotated[str, typer.Option("--from", help="with --interventions: the RT-H policy to fine-tune, a "
                                      "registered name (rth) or a checkpoint folder")] = "rth",
    replay: Annotated[Path | None, typer.Option(help="with --interventions: demonstrations with language_motion "
                                                "mixed in (a quarter of the rows are the corrections), so "
                                                "uncorrected motions are not forgotten")] = None,
) -> None:
    """Train HybridVLA with the embedded SmolLM2 as its backbone (peft LoRA) on an episode dataset; with
    --interventions, fine-tune an RT-H policy's motion query on corrections typed in chat instead."""
    import resource

    if interventions is not None:
        _finetune_interventions(interventions, init, out, steps, lr, batch_size, seed, replay)
        return

    from embodia.commands.train import run_vla_training, seeds_option, vla_config
    from vla.data import dataset_spaces
    from vla.hybrid import HybridConfig
    from vla.train import TrainConfig

    def build() -> TrainConfig:
        policy = HybridConfig(backbone="smollm2", llm_layers=llm_layers, lora_rank=rank, lora_top_layers=top_layers,
                              seed=seed, **dataset_spaces(data))
        return TrainConfig(data=str(data), out=str(out), policy=policy, steps=steps, batch_size=batch_size, lr=lr,
                           warmup_steps=warmup_steps, seed=seed, val_every=val_every,
                           checkpoint_every=checkpoint_every, eval_seeds=seeds_option(eval_seeds),
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


def _finetune_interventions(interventions: Path, init: str, out: Path, steps: int, lr: float, batch_size: int,
                            seed: int, replay: Path | None) -> None:
    """``vla.rth.corrections.finetune_motion``; missing or unfit data or checkpoint exits 2 with the reason."""
    from tools.episode_dataset import MissingColumnsError
    from vla.base import CheckpointError
    from vla.rth import MissingMotionsError
    from vla.rth.corrections import finetune_motion

    if out == Path("runs/vla/hybrid-smollm2"):  # the LoRA run's default folder is not where a policy goes
        out = Path("runs/vla/rth-corrected")
    try:
        metrics = finetune_motion(init, interventions, out, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                                  replay=replay)
    except (FileNotFoundError, CheckpointError, MissingMotionsError, MissingColumnsError, ValueError) as exc:
        console.print(f"[red]cannot fine-tune on interventions:[/] {user_text(str(exc))}")
        raise typer.Exit(2) from exc
    rows = metrics["interventions"]["rows"]
    console.print(f"motion query fine-tuned on {rows} corrected steps from {metrics['interventions']['folder']}: "
                  f"{out} (use it: embodia chat --skills {out})")


def _actions_per_second(out: Path, data: Path, n: int) -> float:
    """``policy.act`` calls per second at batch 1 on the dataset's first rows, the saved policy reloaded."""
    from evals.bench_vla import actions_per_second
    from vla.data import load_frames
    from vla.registry import load_policy

    policy = load_policy(out)
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
