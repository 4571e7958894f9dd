"""Fine-tune the planner LLM on the agent's own decisions, and measure what it learned.

The planner is asked through `LLM.score`: the options are ranked by their log-likelihood as the
start of the assistant's reply to the planner prompt. So the training target starts with the
chosen skill, tokenised exactly as `score` tokenises an option (prompt text + option as one
string), and next-subgoal accuracy is the argmax of `score` over the options the agent had.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from agents.finetune import StepLog, TokenizedExample, TrainConfig, train
from agents.llm import make_llm
from agents.llm.adapters import write_adapter_meta
from agents.llm.transformers_backend import TransformersLLM, common_prefix
from agents.planner_data import TEMPLATE, PlannerExample, load_examples, save_examples, split_by_seed
from prompts import version
from tools.episodes import write_json_atomic
from tools.lora import add_lora

DATASET_FILE = "dataset.jsonl"
METRICS_FILE = "metrics.json"
BASE_ACCURACY_FILE = "base_accuracy.json"
CARD_FILE = "README.md"


@dataclass
class PlannerFinetuneConfig:
    """`embodia finetune planner`: data, split, prompt variants, and the training run."""

    data: list[str]
    out: str
    base: str = "transformers:smollm2"
    heldout_seeds: list[int] | None = None
    heldout_fraction: float = 0.2
    rationale: bool = True
    shuffle_options: bool = True
    successful_only: bool = True
    eval_examples: int = 40  # held-out decisions whose accuracy is measured (before and after)
    eval_loss_examples: int = 16  # of those, the ones whose loss is tracked during training
    train: TrainConfig = field(default_factory=TrainConfig)


def tokenize(example: PlannerExample, llm: TransformersLLM, *, shuffle: bool, rationale: bool) -> TokenizedExample:
    """Prompt + target ids, the boundary found the way `score` finds it, ending with the end-of-turn token."""
    text = llm.render(example.messages(shuffle=shuffle))
    prompt_ids = _encode(llm, text)
    full = [*_encode(llm, text + example.target(rationale=rationale)), llm.tokenizer.eos_token_id]
    return TokenizedExample(full, common_prefix(prompt_ids, full))


def _encode(llm: TransformersLLM, text: str) -> list[int]:
    return llm.tokenizer(text, add_special_tokens=False)["input_ids"]


def accuracies(llm: TransformersLLM, examples: Sequence[PlannerExample]) -> dict[str, float]:
    """Share of decisions where the option `llm` scores highest is the agent's choice.

    Measured with the options in the agent's order (best critic first, as at run time) and shuffled
    (only the state can tell), over all decisions and over the contested ones (where the agent asks
    the LLM because the critic's values are within `llm_weight`). Both orders of one decision are
    scored back to back, so the second reuses the prompt's cached prefix.
    """
    llm.clear_prefix_cache()  # the weights may have changed since the cached prompt was computed
    hits: dict[str, list[bool]] = {"agent_order": [], "shuffled": [], "contested_agent_order": [],
                                   "contested_shuffled": []}
    for example in examples:
        for name, shuffle in (("agent_order", False), ("shuffled", True)):
            options = example.shuffled_options() if shuffle else example.options
            scores = llm.score(example.messages(shuffle=shuffle), options)
            hit = options[max(range(len(options)), key=scores.__getitem__)] == example.chosen
            hits[name].append(hit)
            if "contested" in example.tags:
                hits[f"contested_{name}"].append(hit)
    return {name: sum(found) / len(found) for name, found in hits.items() if found}


def evenly(items: Sequence[Any], n: int) -> list[Any]:
    """`n` items spread over `items` (all of them when n >= len): a fixed, seed-balanced subset."""
    if n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def prepare(config: PlannerFinetuneConfig, llm: TransformersLLM) -> tuple[
        list[PlannerExample], list[PlannerExample], list[TokenizedExample], list[TokenizedExample]]:
    """Load and split the decisions; tokenise the training set and the eval-loss subset of the held-out one."""
    examples = load_examples(config.data, successful_only=config.successful_only)
    train_examples, heldout = split_by_seed(examples, config.heldout_seeds, config.heldout_fraction)
    heldout = evenly(heldout, config.eval_examples)
    variant = {"shuffle": config.shuffle_options, "rationale": config.rationale}
    train_ids = [tokenize(e, llm, **variant) for e in train_examples]
    eval_ids = [tokenize(e, llm, **variant) for e in evenly(heldout, config.eval_loss_examples)]
    return train_examples, heldout, train_ids, eval_ids


def base_accuracy(llm: TransformersLLM, base: str, heldout: Sequence[PlannerExample], out: Path) -> dict[str, float]:
    """The base model's held-out accuracies, measured once per (base model, held-out decisions) and kept in
    `out`: a resumed run (or a longer one on the same data) does not spend minutes measuring them again."""
    key = {"base": base, "decisions": hashlib.sha256(json.dumps(
        [asdict(e) for e in heldout], sort_keys=True).encode()).hexdigest()}
    path = out / BASE_ACCURACY_FILE
    if path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            return cached["accuracy"]
    accuracy = accuracies(llm, heldout)
    write_json_atomic(path, {"key": key, "accuracy": accuracy})
    return accuracy


def finetune_planner(config: PlannerFinetuneConfig, *, resume: bool = False,
                     on_step: Callable[[StepLog], None] | None = None, measure: bool = True,
                     accelerator: Accelerator | None = None) -> dict[str, Any]:
    """Train a LoRA adapter for the planner; write it, its dataset and its metrics to `config.out`.

    With `measure`, held-out next-subgoal accuracy is measured for the base model (before training)
    and the adapter (after). Under `accelerate launch` every process trains on its shard and only
    the main one measures and writes. Returns the metrics (also written to `metrics.json`).
    """
    out = Path(config.out)
    accelerator = accelerator or Accelerator()
    main = accelerator.is_main_process
    llm = make_llm(config.base, device=str(accelerator.device))
    if not isinstance(llm, TransformersLLM):
        raise ValueError(f"LoRA fine-tuning needs the transformers backend, not {config.base!r}")
    train_examples, heldout, train_ids, eval_ids = prepare(config, llm)
    metrics: dict[str, Any] = {"examples": {"train": len(train_examples), "heldout": len(heldout)},
                               "heldout_seeds": sorted({e.seed for e in heldout}),
                               "train_tokens_per_epoch": sum(len(t.ids) for t in train_ids)}
    if main:
        save_examples(train_examples + heldout, out / DATASET_FILE)
        if measure:
            metrics["base_accuracy"] = base_accuracy(llm, config.base, heldout, out)
    model = add_lora(llm.model, config.train.lora, config.train.seed)  # in place: `llm` now scores with the adapter
    started = time.perf_counter()
    result = train(model, train_ids, eval_ids, config.train, out, resume=resume, on_step=on_step,
                   accelerator=accelerator)
    metrics["train"] = {"steps": config.train.steps, "wall_seconds": round(time.perf_counter() - started, 1),
                        "tokens_per_second": round(result.tokens_per_second, 1),
                        "final_loss": result.history[-1].loss if result.history else None,
                        "eval_loss": next((h.eval_loss for h in reversed(result.history) if h.eval_loss), None)}
    if not main:
        return metrics
    model = accelerator.unwrap_model(model)
    model.peft_config["default"].base_model_name_or_path = llm.name  # not this machine's cache path
    model.save_pretrained(out)
    write_adapter_meta(out, base=llm.name, model=model.get_base_model(), prompt_template=TEMPLATE,
                       prompt_version=version(TEMPLATE))
    if measure:
        model.eval()
        metrics["adapter_accuracy"] = accuracies(llm, heldout)
    metrics["config"] = asdict(config)
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    (out / CARD_FILE).write_text(adapter_card(metrics), encoding="utf-8")  # replaces peft's empty template
    return metrics


ACCURACY_ROWS = {
    "agent_order": "options in the agent's order (as at run time)",
    "shuffled": "options shuffled (only the state can tell)",
    "contested_agent_order": "contested decisions (the agent asks the LLM), agent's order",
    "contested_shuffled": "contested decisions, shuffled",
}


def reproduce_command(config: dict[str, Any]) -> str:
    """The `embodia finetune planner` command line that trains the adapter described by ``config``."""
    train, lora = config["train"], config["train"]["lora"]
    parts = ["embodia finetune planner", *(f"--data {d}" for d in config["data"]), f"--out {config['out']}",
             f"--base {config['base']}", f"--steps {train['steps']}", f"--lr {train['lr']:g}",
             f"--warmup-steps {train['warmup_steps']}", f"--batch-tokens {train['batch_tokens']}",
             f"--rank {lora['rank']}", f"--top-layers {lora['top_layers']}", f"--seed {train['seed']}",
             f"--eval-examples {config['eval_examples']}", f"--eval-every {train['eval_every']}",
             f"--save-every {train['save_every']}"]
    if config.get("heldout_seeds"):
        parts.append(f"--heldout-seeds {','.join(map(str, config['heldout_seeds']))}")
    parts += [flag for flag, on in (("--no-rationale", not config["rationale"]),
                                    ("--no-shuffle-options", not config["shuffle_options"]),
                                    ("--all-episodes", not config["successful_only"])) if on]
    return " \\\n    ".join(parts)


def adapter_card(metrics: dict[str, Any]) -> str:
    """The adapter's README: what it was trained on, how, and what it measured (all from ``metrics``)."""
    config, train = metrics["config"], metrics["train"]
    lora = config["train"]["lora"]
    heldout_seeds = ", ".join(map(str, metrics["heldout_seeds"]))
    lines = [f"# Planner LoRA adapter for `{config['base']}`", "",
             "Trained by `embodia finetune planner` to pick the subgoal the agent picked, from the planner prompt "
             f"(`prompts/templates/{TEMPLATE}.jinja`, version `{version(TEMPLATE)}`). Use it with "
             f"`embodia run \"…\" --adapter {config['out']}` or `peft.PeftModel.from_pretrained(base, dir)`.", "",
             "| | |", "|---|---|",
             f"| data | {', '.join(config['data'])}: {metrics['examples']['train']:,} training decisions, "
             f"{metrics['examples']['heldout']:,} held out (world seeds {heldout_seeds}) |",
             f"| LoRA | rank {lora['rank']}, alpha {lora['alpha']}, {', '.join(lora['target_modules'])} of the last "
             f"{lora['top_layers'] or 'all'} layers |",
             f"| training | {train['steps']} steps of {config['train']['batch_tokens']:,} packed tokens, lr "
             f"{config['train']['lr']:g}, seed {config['train']['seed']}; {train['wall_seconds']:,.0f} s, "
             f"{train['tokens_per_second']:.0f} tokens/s (this run's last invocation) |",
             f"| losses | final training {train['final_loss']:.3f}, held-out "
             f"{train['eval_loss'] or float('nan'):.3f} |",
             "", "## Reproduce", "", "```bash", reproduce_command(config), "```", ""]
    if "adapter_accuracy" in metrics:
        lines += [f"## Next-subgoal accuracy ({metrics['examples']['heldout']} held-out decisions)", "",
                  "| options | base | adapter |", "|---|---|---|"]
        lines += [f"| {label} | {metrics['base_accuracy'][key]:.0%} | {metrics['adapter_accuracy'][key]:.0%} |"
                  for key, label in ACCURACY_ROWS.items() if key in metrics["adapter_accuracy"]]
    return "\n".join(lines) + "\n"


def merge_adapter(adapter: str | Path, out: str | Path, base: str = "transformers:smollm2") -> Path:
    """Write base + adapter as one plain safetensors model (loads without peft, e.g. in vLLM)."""
    llm = make_llm(base, adapter=str(adapter))
    assert isinstance(llm, TransformersLLM)
    llm.model.save_pretrained(out)
    llm.tokenizer.save_pretrained(out)
    return Path(out)
