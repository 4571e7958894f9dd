"""Planner fine-tuning benchmark: what the adapter learned, and what training costs on this CPU.

    python -m evals.bench_finetune --data runs/traces/crafter2 --adapter agents/adapters/planner-crafter \
        --out runs/bench/finetune.json

* Next-subgoal accuracy on held-out worlds (split by seed, as in training; or with `--test-data`,
  on trace folders from worlds the training data never visited): the argmax of
  `LLM.score` over the options the agent had equals the agent's (critic-only teacher's) choice;
  base model vs `make_llm(..., adapter=DIR)` (the path `embodia run --adapter` takes).
* Training throughput (tokens/s, prompt + target tokens actually in the data) and peak RSS of
  embodia's loop (packing, logits only at target positions) against a plain peft +
  `transformers.Trainer` run (pad to the longest in the batch, full logits) on the same examples,
  with the same LoRA config, threads and batch size; each in its own process, so RSS is its own.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tools.episodes import write_json_atomic

MODES = ("embodia", "trainer")


def _train_set(data: list[str], examples: int):
    """The LLM and the first `examples` training decisions as token ids (what both loops train on)."""
    from agents.llm import make_llm
    from agents.planner_data import load_examples, split_by_seed
    from agents.planner_tuning import tokenize

    llm = make_llm("transformers:smollm2")
    train_examples, _ = split_by_seed(load_examples(data))
    return llm, [tokenize(e, llm, shuffle=True, rationale=True) for e in train_examples[:examples]]


def _worker(mode: str, data: list[str], steps: int, batch_examples: int, top_layers: int) -> dict:
    """Train `steps` steps of `batch_examples` examples with one loop; report tokens/s and peak RSS."""
    import torch

    from agents.finetune import TrainConfig, train
    from tools.lora import LoraSettings, add_lora

    llm, examples = _train_set(data, steps * batch_examples)
    settings = LoraSettings(top_layers=top_layers)
    model = add_lora(llm.model, settings)
    if mode == "embodia":
        # One packed row per step holding exactly `batch_examples` examples, as the Trainer's batches do.
        budget = max(sum(len(e.ids) for e in examples[i:i + batch_examples])
                     for i in range(0, len(examples), batch_examples))
        config = TrainConfig(steps=steps, batch_tokens=budget, eval_every=10**9, save_every=10**9, lora=settings)
        with tempfile.TemporaryDirectory() as tmp:
            result = train(model, examples, [], config, tmp)
        tokens, seconds = result.train_tokens, result.train_seconds
    else:
        tokens, seconds = _trainer_run(model, llm.tokenizer, examples, steps, batch_examples)
    return {"mode": mode, "threads": torch.get_num_threads(), "steps": steps, "tokens": tokens,
            "seconds": round(seconds, 2), "tokens_per_second": round(tokens / seconds, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _trainer_run(model, tokenizer, examples, steps: int, batch_examples: int) -> tuple[int, float]:
    """The baseline: `transformers.Trainer` with `DataCollatorForSeq2Seq` (pads, labels -100 on the prompt)."""
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    rows = [{"input_ids": e.ids, "attention_mask": [1] * len(e.ids),
             "labels": [-100] * e.n_prompt + e.ids[e.n_prompt:]} for e in examples]

    class StepTimer(TrainerCallback):
        seconds = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            StepTimer.seconds += time.perf_counter() - self.began

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch_examples, max_steps=steps,
                                 learning_rate=1e-3, save_strategy="no", report_to=[], logging_strategy="no",
                                 use_cpu=True, dataloader_num_workers=0, disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=rows, callbacks=[StepTimer()],
                          data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100))
        trainer.train()
    return sum(len(e.ids) for e in examples), StepTimer.seconds


def _accuracy(data: list[str], adapter: Path, examples: int, test_data: list[str] | None) -> dict:
    """Scores on the training data's held-out seeds, or on `test_data` (worlds the adapter never saw)."""
    from agents.llm import make_llm
    from agents.planner_data import TraceError, load_examples, split_by_seed
    from agents.planner_tuning import accuracies, evenly

    train, heldout = split_by_seed(load_examples(data))
    if test_data:
        heldout = load_examples(test_data)
        seen = sorted({e.seed for e in train} & {e.seed for e in heldout})
        if seen:
            raise TraceError(f"--test-data shares world seeds {seen} with the training data: not a test of "
                             "unseen worlds")
    heldout = evenly(heldout, examples)
    return {"source": "test data" if test_data else "held-out seeds of the training data",
            "heldout_decisions": len(heldout), "heldout_seeds": sorted({e.seed for e in heldout}),
            "base": accuracies(make_llm("transformers:smollm2"), heldout),
            "adapter": accuracies(make_llm("transformers:smollm2", adapter=str(adapter)), heldout)}


def main(
    data: Annotated[list[str], typer.Option(help="episode folders (or dataset.jsonl) the adapter was trained on")],
    adapter: Annotated[Path, typer.Option(help="adapter dir")] = Path("agents/adapters/planner-crafter"),
    examples: Annotated[int, typer.Option(help="held-out decisions scored per model")] = 32,
    steps: Annotated[int, typer.Option(help="training steps per throughput run")] = 3,
    batch_examples: Annotated[int, typer.Option(help="examples per training step (both loops)")] = 4,
    top_layers: Annotated[int, typer.Option(help="LoRA on the last N layers (both loops)")] = 6,
    test_data: Annotated[list[str] | None, typer.Option(
        help="episode folders from worlds never trained on (e.g. planner-traces --split test); scored instead of "
             "the held-out seeds of --data")] = None,
    skip_accuracy: Annotated[bool, typer.Option(help="throughput only")] = False,
    skip_training: Annotated[bool, typer.Option(help="accuracy only")] = False,
    worker: Annotated[str | None, typer.Option(hidden=True)] = None,
    out: Annotated[Path, typer.Option(help="JSON results")] = Path("runs/bench/finetune.json"),
) -> None:
    if worker is not None:
        print(json.dumps(_worker(worker, data, steps, batch_examples, top_layers)))
        return
    console = Console()
    results: dict = {"command": " ".join(["python -m evals.bench_finetune", *sys.argv[1:]]),
                     "threads_env": os.environ.get("EMBODIA_LLM_THREADS"), "load_average": os.getloadavg()}
    if not skip_accuracy:
        with console.status("scoring held-out decisions with the base model and the adapter …"):
            results["accuracy"] = _accuracy(data, adapter, examples, test_data)
    results["training"] = []
    for mode in () if skip_training else MODES:
        with console.status(f"training {steps} steps with the {mode} loop …"):
            args = [sys.executable, "-m", "evals.bench_finetune", "--worker", mode, "--steps", str(steps),
                    "--batch-examples", str(batch_examples), "--top-layers", str(top_layers)]
            for d in data:
                args += ["--data", d]
            done = subprocess.run(args, capture_output=True, text=True, check=True)
            results["training"].append(json.loads(done.stdout.strip().splitlines()[-1]))
    results["load_average_after"] = os.getloadavg()
    write_json_atomic(out, results)
    _print(console, results)
    console.print(f"wrote {out}")


def _print(console: Console, results: dict) -> None:
    if "accuracy" in results:
        acc = results["accuracy"]
        table = Table(title=f"next-subgoal accuracy, {acc['heldout_decisions']} decisions from unseen worlds "
                            f"({acc['source']}: seeds {acc['heldout_seeds']})")
        for column in ("options", "base", "adapter", "gain (points)"):
            table.add_column(column, justify="left" if column == "options" else "right")
        for name, value in acc["adapter"].items():
            base = acc["base"][name]
            table.add_row(name, f"{base:.0%}", f"{value:.0%}", f"{100 * (value - base):+.0f}")
        console.print(table)
    if not results["training"]:
        return
    table = Table(title="LoRA training on this CPU (same examples, LoRA config, threads)")
    for column in ("loop", "threads", "tokens", "tokens/s", "peak RSS (MB)"):
        table.add_column(column, justify="left" if column == "loop" else "right")
    for run in results["training"]:
        table.add_row("embodia (packed, target logits)" if run["mode"] == "embodia" else "peft + Trainer (padded)",
                      str(run["threads"]), str(run["tokens"]), f"{run['tokens_per_second']:.0f}",
                      str(run["peak_rss_mb"]))
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
