"""The LoRA planner trainer under DDP: two real processes over gloo (``tests.ddp.spawn_launcher``).

``agents.finetune.batch_stream`` deals each step's packed batches round-robin to the ranks; a two-process
run stopped after step 2 and resumed ends at the uninterrupted two-process run's adapter weights.
"""

import pytest
import torch
from safetensors.torch import load_file

from agents.finetune import TrainConfig, latest_checkpoint, train
from agents.llm.adapters import ADAPTER_WEIGHTS
from tests.agents.test_finetune import CONFIG, examples, fresh_lora, llm, one_thread, token_sets, traces  # noqa: F401
from tests.ddp import spawn_launcher

DDP = TrainConfig(**{**CONFIG.__dict__, "batch_tokens": 128})


def _train(llm, train_ids, heldout_ids, out, stop_after, resume) -> None:  # noqa: F811
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # a fresh process: no one-process state left over
    torch.set_num_threads(1)
    train(fresh_lora(llm), train_ids, heldout_ids, DDP, out, resume=resume, stop_after=stop_after,
          accelerator=Accelerator(cpu=True))


@pytest.mark.slow
def test_two_process_lora_resume_ends_at_the_uninterrupted_weights(tmp_path, token_sets, llm):  # noqa: F811
    train_ids, heldout_ids = token_sets
    spawn_launcher(_train, (llm, train_ids, heldout_ids, tmp_path / "full", None, False), num_processes=2)
    spawn_launcher(_train, (llm, train_ids, heldout_ids, tmp_path / "resumed", 2, False), num_processes=2)
    spawn_launcher(_train, (llm, train_ids, heldout_ids, tmp_path / "resumed", None, True), num_processes=2)
    expected = load_file(latest_checkpoint(tmp_path / "full") / ADAPTER_WEIGHTS)
    got = load_file(latest_checkpoint(tmp_path / "resumed") / ADAPTER_WEIGHTS)
    assert latest_checkpoint(tmp_path / "resumed").name == "step-0000004"
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6)
