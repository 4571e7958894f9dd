"""LoRA fine-tuning of the planner: real agent traces, the real embedded SmolLM2, no mocks.

Kept small for a shared 2-core machine: two critic-only episodes, one-example batches, LoRA on the
last layer only, one torch thread.
"""

from __future__ import annotations

import copy
import itertools
import json
import shutil
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM
from typer.testing import CliRunner

import prompts
from agents.episode import run_episode
from agents.finetune import TrainConfig, batch_loss, eval_loss, latest_checkpoint, pack, train
from agents.llm import make_llm
from agents.llm.adapters import (
    ADAPTER_WEIGHTS,
    DEFAULT_PLANNER_ADAPTER,
    AdapterMismatchError,
    check_adapter,
    load_adapter,
    resolve_adapter,
    write_adapter_meta,
)
from agents.planner_data import (
    TraceError,
    load_examples,
    read_examples,
    save_examples,
    split_by_seed,
)
from agents.planner_tuning import tokenize
from embodia.cli import app
from tools.episodes import LOG_FILE, read_log
from tools.lora import LoraSettings, add_lora

CONFIG = TrainConfig(steps=4, lr=5e-3, warmup_steps=1, batch_tokens=256, eval_every=4, save_every=2, seed=0,
                     lora=LoraSettings(rank=4, alpha=8, top_layers=1))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBODIA_LLM_THREADS", "1")
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> Path:
    """Two critic-only episodes (the oracle-quality teacher) on seeds 0 and 1."""
    root = tmp_path_factory.mktemp("traces")
    for seed in (0, 1):
        result = run_episode("make a wood pickaxe", seed=seed, out_dir=root / f"seed-{seed}", llm=None, video=False)
        assert result.success
    return root


@pytest.fixture(scope="module")
def examples(traces):
    return load_examples([traces])


@pytest.fixture(scope="module")
def llm():
    return make_llm("transformers:smollm2")


@pytest.fixture(scope="module")
def token_sets(examples, llm):
    """(train, held-out) token ids: the first two decisions of seed 0 and of seed 1."""
    train_examples, heldout = split_by_seed(examples, heldout_seeds=[1])
    return ([tokenize(e, llm, shuffle=True, rationale=True) for e in train_examples[:2]],
            [tokenize(e, llm, shuffle=True, rationale=True) for e in heldout[:2]])


def fresh_lora(llm):
    """A new LoRA model on a copy of the base (copying is much faster than loading)."""
    return add_lora(copy.deepcopy(llm.model), CONFIG.lora, CONFIG.seed)


def test_examples_rebuild_the_logged_prompts(traces, examples):
    logged = [r for log in sorted(traces.rglob(LOG_FILE)) for r in read_log(log)
              if r["type"] == "PlanningStep" and len(r["candidates"]) > 1]
    assert len(examples) == len(logged) >= 4
    for example, record in zip(examples, logged, strict=True):
        assert example.messages() == record["prompt"]  # exactly what the agent rendered
        assert example.prompt_version == record["prompt_version"] == prompts.version("planner")
        assert example.chosen == record["chosen"]["future"][0] in example.options
        assert sorted(example.shuffled_options()) == sorted(example.options)
    assert example.target().startswith(example.chosen + "\nPlan: ")
    train_examples, heldout = split_by_seed(examples, heldout_seeds=[1])
    assert {e.seed for e in train_examples} == {0} and {e.seed for e in heldout} == {1}


def test_dataset_round_trip_and_wrong_prompt_version(tmp_path, examples):
    path = save_examples(examples, tmp_path / "dataset.jsonl")
    assert read_examples(path) == examples
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["prompt_version"] = "0123456789ab"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(TraceError, match=r"dataset.jsonl:2: .*version '0123456789ab'"):
        load_examples([path])


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r.update(prompt_version="0123456789ab"), "planner prompt version '0123456789ab'"),
    (lambda r: r.pop("candidates"), "PlanningStep lacks field 'candidates'"),
    (lambda r: r["prompt"][1].update(content="something else"), "logged planner prompt differs"),
])
def test_bad_traces_are_refused(tmp_path, traces, edit, message):
    folder = tmp_path / "episode"
    shutil.copytree(traces / "seed-0", folder)
    records = read_log(folder / LOG_FILE)
    edit(next(r for r in records if r["type"] == "PlanningStep"))
    (folder / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(TraceError, match=message):
        load_examples([folder])


def test_lora_trains_saves_loads_and_resumes(tmp_path, token_sets, llm):
    train_ids, heldout_ids = token_sets
    batches = pack(train_ids, CONFIG.batch_tokens)

    # The uninterrupted run: a few steps lower the loss on what it trained on.
    model = fresh_lora(llm)
    before = eval_loss(model, batches)
    full = train(model, train_ids, heldout_ids, CONFIG, tmp_path / "full")
    after = eval_loss(model, batches)
    assert after < before - 0.1, (before, after)
    assert [h.step for h in full.history] == [1, 2, 3, 4]
    assert full.history[-1].eval_loss is not None

    # The adapter dir loads with plain peft and gives the logits the trained model gives.
    model.eval()
    with torch.no_grad():
        trained_logits = model(input_ids=batches[0].input_ids).logits
    checkpoint = latest_checkpoint(tmp_path / "full")
    assert checkpoint is not None and checkpoint.name == "step-0000004"
    loaded = PeftModel.from_pretrained(copy.deepcopy(llm.model), checkpoint).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=batches[0].input_ids).logits, trained_logits)

    # Killed after step 2, resumed in a fresh process-like state: steps 3-4 repeat the same losses.
    train(fresh_lora(llm), train_ids, heldout_ids, CONFIG, tmp_path / "resumed", stop_after=2)
    resumed = train(fresh_lora(llm), train_ids, heldout_ids, CONFIG, tmp_path / "resumed", resume=True)
    assert [h.step for h in resumed.history] == [3, 4]
    for a, b in zip(full.history[2:], resumed.history, strict=True):
        assert b.loss == pytest.approx(a.loss, abs=1e-5)
    # ... and end at the uninterrupted run's adapter weights (float32 on CPU: equal to rounding).
    expected = load_file(latest_checkpoint(tmp_path / "full") / ADAPTER_WEIGHTS)
    got = load_file(latest_checkpoint(tmp_path / "resumed") / ADAPTER_WEIGHTS)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6)

    # Another training config cannot silently continue this run.
    other = TrainConfig(**{**CONFIG.__dict__, "lr": 1e-4})
    with pytest.raises(ValueError, match="another training config"):
        train(fresh_lora(llm), train_ids, heldout_ids, other, tmp_path / "resumed", resume=True)


def test_adapter_for_another_base_model_is_refused(tmp_path, llm):
    model = fresh_lora(llm)
    model.save_pretrained(tmp_path)
    write_adapter_meta(tmp_path, base=llm.name, model=model.get_base_model())
    other = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4))
    with pytest.raises(AdapterMismatchError, match=r"'transformers:smollm2', which differs from 'tiny-llama'"):
        load_adapter(other, tmp_path, "tiny-llama")
    with pytest.raises(AdapterMismatchError, match="not a LoRA adapter dir"):
        load_adapter(other, tmp_path / "missing", "tiny-llama")


def test_cli_finetune_planner_then_run_with_adapter(tmp_path, traces, token_sets, llm):
    out = tmp_path / "adapter"
    args = ["finetune", "planner", "--data", str(traces), "--out", str(out), "--steps", "2", "--batch-tokens",
            "256", "--rank", "4", "--top-layers", "1", "--heldout-seeds", "1", "--no-measure", "--merge"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {"adapter_model.safetensors", "embodia_adapter.json", "dataset.jsonl", "metrics.json"} <= {
        p.name for p in out.iterdir()}
    assert (out / "merged" / "model.safetensors").is_file()
    card = (out / "README.md").read_text()  # our card, not peft's empty template
    command = card.split("```bash\n")[1].split("```")[0].replace("\\\n", " ").split()
    assert command[:3] == ["embodia", "finetune", "planner"] and "More Information Needed" not in card
    assert {("--steps", "2"), ("--rank", "4"), ("--top-layers", "1"), ("--heldout-seeds", "1"),
            ("--batch-tokens", "256"), ("--data", str(traces))} <= set(itertools.pairwise(command))
    # `embodia run --adapter` goes through make_llm: merged in, the same loss as the peft model.
    batch = pack(token_sets[1], 10_000)[0]
    tuned = make_llm("transformers:smollm2", adapter=str(out))
    with torch.no_grad():
        assert batch_loss(tuned.model, batch).item() == pytest.approx(
            batch_loss(PeftModel.from_pretrained(copy.deepcopy(llm.model), out), batch).item(), abs=1e-4)
    bad = CliRunner().invoke(app, ["finetune", "planner", "--data", str(tmp_path / "nothing"), "--out", str(out)])
    assert bad.exit_code == 2 and "no episode.jsonl found" in " ".join(bad.output.split())


def test_shipped_adapter_is_the_default_and_fits_the_embedded_model(llm):
    shipped = resolve_adapter("transformers:smollm2", "default")
    assert shipped == str(DEFAULT_PLANNER_ADAPTER)
    assert resolve_adapter("transformers:smollm2", "none") is None
    assert resolve_adapter("transformers:/some/other/model", "default") is None
    meta = check_adapter(shipped, llm.model, llm.name)
    assert meta["prompt_version"] == prompts.version("planner"), "planner.jinja changed: retrain the shipped adapter"


def test_base_accuracy_is_measured_once_per_model_and_decisions(tmp_path, examples, llm):
    from agents.planner_tuning import BASE_ACCURACY_FILE, accuracies, base_accuracy

    _, heldout = split_by_seed(examples)
    measured = base_accuracy(llm, "transformers:smollm2", heldout[:2], tmp_path)
    assert measured == accuracies(llm, heldout[:2])
    record = json.loads((tmp_path / BASE_ACCURACY_FILE).read_text())
    record["accuracy"] = {"agent_order": -1.0}  # what a resumed run reads instead of measuring again
    (tmp_path / BASE_ACCURACY_FILE).write_text(json.dumps(record))
    assert base_accuracy(llm, "transformers:smollm2", heldout[:2], tmp_path) == {"agent_order": -1.0}
    assert base_accuracy(llm, "transformers:smollm2", heldout[:1], tmp_path) == accuracies(llm, heldout[:1])
