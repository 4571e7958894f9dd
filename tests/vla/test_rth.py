"""RT-H: one policy queried twice (motion, then action), trained on tiny real data; corrections override the
motion, are logged as intervention data, and fine-tuning on them changes the motion query only."""

import pyarrow.parquet as pq
import pytest
import torch

from tools.episode_dataset import LANGUAGE_MOTION
from tools.language_motion import CRAFTER_MOTIONS
from vla.data import load_frames
from vla.registry import load_policy
from vla.rth import MissingMotionsError, RTHConfig, RTHPolicy
from vla.rth.corrections import UnknownMotionError, finetune_motion, resolve_motion, write_interventions
from vla.train import TrainConfig, train

TINY = {"d_model": 32, "n_layers": 1, "n_heads": 2}


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    """A tiny RT-H trained for a few steps on one real Crafter world (the collector's language motions)."""
    out = tmp_path_factory.mktemp("rth")
    with torch.random.fork_rng():  # train() seeds torch globally; later tests' unseeded fixtures must not see it
        metrics = train(TrainConfig(data=str(tiny_dataset), out=str(out), policy=RTHConfig(**TINY),
                                    steps=40, batch_size=16, lr=3e-3, warmup_steps=2, val_every=4,
                                    checkpoint_every=40, eval_seeds=()))
    return out, metrics


def test_the_two_query_policy_trains_on_real_rows(trained, tiny_dataset):
    out, metrics = trained
    assert pq.read_schema(next((tiny_dataset / "data").glob("*.parquet"))).names.count(LANGUAGE_MOTION) == 1
    policy = load_policy(out)
    assert isinstance(policy, RTHPolicy) and policy.config.motions == CRAFTER_MOTIONS
    assert {"motion_accuracy", "action_accuracy", "action_accuracy_predicted_motion"} <= set(metrics["validation"])
    # the loss fell from a fresh policy's on the training rows
    frames = RTHPolicy.training_frames(TrainConfig(data=str(tiny_dataset), policy=RTHConfig(**TINY)))
    batch = frames[slice(0, 64)]
    torch.manual_seed(0)
    fresh = RTHPolicy(RTHConfig(**TINY, motions=CRAFTER_MOTIONS)).eval()
    with torch.no_grad():
        assert policy(batch)[1]["motion_loss"] < fresh(batch)[1]["motion_loss"] - 0.5
    obs = {"image": batch["image"][0].numpy(), "state": batch["state"][0].numpy()}
    action = policy.act(obs, frames.texts[0])
    assert isinstance(action, int) and policy.last_motion in CRAFTER_MOTIONS
    # the action query reads the motion: different motions can give different actions from the same frame
    many = {k: v.numpy() for k, v in batch.items() if k in ("image", "state")}
    n = len(batch["motion"])
    chunks = {m: policy.predict_action_chunk(many, frames.texts[:n], [m] * n)[:, 0].tolist()
              for m in ("move left", "do", "place table")}
    assert len({tuple(v) for v in chunks.values()}) > 1


def test_a_correction_overrides_the_motion_and_is_logged(trained, tiny_dataset, tmp_path):
    out, _ = trained
    policy = load_policy(out)
    frames = load_frames(tiny_dataset, 1, policy.config.max_instruction_len)
    obs = {"image": frames.image[0].numpy(), "state": frames.state[0].numpy()}
    assert policy.override("face the tree", 2) == 2
    want = policy.predict_action_chunk({k: v[None] for k, v in obs.items()}, ["collect wood"], ["face the tree"])
    assert [policy.act(obs, "collect wood") for _ in range(2)] == [int(want[0, 0])] * 2
    assert policy.active_override is None
    policy.act(obs, "collect wood")  # the override is spent: the predicted motion again, not logged
    assert [row.motion for row in policy.interventions] == ["face the tree"] * 2
    path = write_interventions(tmp_path, policy.interventions)
    table = pq.read_table(path)
    assert table.column(LANGUAGE_MOTION).to_pylist() == ["face the tree"] * 2
    assert table.column("instruction").to_pylist() == ["collect wood"] * 2
    assert write_interventions(tmp_path, policy.interventions).name == "interventions-00001.parquet"


def test_finetune_on_interventions_changes_the_motion_query_only(trained, tiny_dataset, tmp_path):
    out, _ = trained
    policy = load_policy(out)
    frames = load_frames(tiny_dataset, 1, policy.config.max_instruction_len)
    for i in range(20):  # a person insists on 'face the tree' where the policy predicts something else
        policy.override("face the tree", 1)
        policy.act({"image": frames.image[i].numpy(), "state": frames.state[i].numpy()}, frames.texts[i])
    write_interventions(tmp_path / "chat" / "interventions", policy.interventions)
    obs = {"image": frames.image[:20].numpy(), "state": frames.state[:20].numpy()}
    tree = CRAFTER_MOTIONS.index("face the tree")
    before = (policy.predict_motion(obs, frames.texts[:20]).argmax(-1) == tree).float().mean().item()
    finetune_motion(out, tmp_path / "chat", tmp_path / "tuned", steps=30, lr=1e-2, batch_size=16)
    tuned = load_policy(tmp_path / "tuned")
    after = (tuned.predict_motion(obs, frames.texts[:20]).argmax(-1) == tree).float().mean().item()
    assert after > before + 0.5
    old, new = policy.state_dict(), tuned.state_dict()
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and changed <= {"motion_query", "motion_head.weight", "motion_head.bias"}
    assert tuned.config.instructions == policy.config.instructions and tuned.config.trainable == "all"


def test_data_without_motions_and_unknown_phrases_are_refused(tiny_dataset, tmp_path):
    table = pq.read_table(next((tiny_dataset / "data").glob("*.parquet"))).drop_columns([LANGUAGE_MOTION])
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "seed-000000.parquet")
    with pytest.raises(MissingMotionsError, match=r"python -m tools\.language_motion"):
        train(TrainConfig(data=str(tmp_path), out=str(tmp_path / "out"), policy=RTHConfig(**TINY), steps=1,
                          eval_seeds=()))
    with pytest.raises(UnknownMotionError) as caught:
        resolve_motion("move lft", CRAFTER_MOTIONS)
    assert caught.value.suggestions[0] == "move left"
    assert resolve_motion("  Move   LEFT ", CRAFTER_MOTIONS) == "move left"
