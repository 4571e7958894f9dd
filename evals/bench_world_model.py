"""Benchmark of the RSSM world model on held-out Crafter episodes (DESIGN §7).

    python -m evals.bench_world_model --out runs/bench/world_model.json  # default: the shipped tiny model

Open-loop prediction: the model filters ``--context`` real frames, then imagines 16 steps under the
real actions; images are compared with the real frames (MSE, PSNR and SSIM on pixels in [0, 1]) against
the copy-last-frame baseline, the imagined return (reward head) with the real one, and the predicted
change of each inventory/achievement value over those 16 steps with the real change. Speed: imagined
steps per second for a batch of parallel rollouts (latent only, as planners use it, and with decoded
frames), seconds per training update,
peak resident memory. Also writes a PNG grid of real vs imagined frames. Counting: the raw imagined
success of "place table" (2 wood) after 0-3 real wood chops in fresh worlds, i.e. whether the model
tells a doomed attempt (one wood) from a feasible one (two), which a planner without preconditions relies on.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from agents.imagination import Imagination, ObservationHistory
from tools.envs.crafter import CrafterEnv
from tools.episode_dataset import SHARD_GLOB
from tools.episodes import write_json_atomic
from tools.skills.crafter import run_skill
from world_models import SHIPPED_CHECKPOINT
from world_models.data import HELDOUT_SEED, SKILL_NAMES, CollectConfig, SequenceSampler, collect, load_episodes
from world_models.env import WorldModelEnv
from world_models.metrics import ssim
from world_models.rssm import RSSMWorldModel, load_world_model

HORIZONS = (1, 5, 16)


def open_loop(model: RSSMWorldModel, episodes: list[dict[str, np.ndarray]], context: int, horizon: int,
              stride: int, samples: int = 1) -> dict[str, np.ndarray]:
    """Per-window errors: model/baseline MSE and SSIM (W, horizon), predicted/real state change at the horizon
    (W, D), and imagined/real return over the horizon (W,).

    ``mse`` scores one imagined rollout (sample 0), as a single imagined future looks; ``mse_mean``
    scores the pixel mean of ``samples`` rollouts under the same actions, the model's expected frame
    (what MSE rewards: it separates the model's uncertainty from its bias). The predicted change is
    measured on sample 0, twice: from the real start value, and from the model's own reading of the
    start frame (``pred_delta_own``), which is how imagination reads it (a constant bias cancels); and
    as :class:`~agents.imagination.Imagination` reports it (``pred_delta_expected``): the mean change over
    the ``samples`` rollouts from the model's reading, rounded. The imagined return sums the reward head
    (sample 0, and the mean over samples) under the real actions; the real one sums the rewards received.
    """
    world = WorldModelEnv(model, seed=0, render=True)
    mse, mse_mean, base, pred_delta, own_delta, expected_delta, real_delta, grids = [], [], [], [], [], [], [], []
    sim, sim_mean, sim_base, returns, expected_returns, real_returns = [], [], [], [], [], []
    for episode in episodes:
        frames = len(episode["action"])
        for t0 in range(context - 1, frames - horizon - 1, stride):
            start = t0 - context + 1
            obs = {"image": episode["image"][start:t0 + 1], "state": episode["state"][start:t0 + 1]}
            reading = world.reset_from(obs, episode["action"][start:t0], batch_size=samples)["state"][0]
            real = episode["image"][t0 + 1:t0 + 1 + horizon].astype(np.float32) / 255  # (H, 64, 64, 3)
            imagined, expected, rewards = [], [], np.zeros(samples, np.float32)
            for k in range(horizon):
                out, reward, _ = world.step(np.repeat(episode["action"][t0 + k:t0 + k + 1].astype(np.int64), samples))
                imagined.append(out["image"][0])
                expected.append(out["image"].astype(np.float32).mean(0))
                rewards += reward
            imagined, expected = np.stack(imagined).astype(np.float32) / 255, np.stack(expected) / 255
            last = np.repeat(episode["image"][t0:t0 + 1].astype(np.float32) / 255, horizon, 0)
            mse.append(((imagined - real) ** 2).mean((1, 2, 3)))
            mse_mean.append(((expected - real) ** 2).mean((1, 2, 3)))
            base.append(((last - real) ** 2).mean((1, 2, 3)))
            sim.append(ssim(imagined, real))
            sim_mean.append(ssim(expected, real))
            sim_base.append(ssim(last, real))
            returns.append(rewards[0])
            expected_returns.append(rewards.mean())
            real_returns.append(episode["reward"][t0 + 1:t0 + 1 + horizon].sum())
            pred_delta.append(np.round(out["state"][0]) - episode["state"][t0])
            own_delta.append(np.round(np.clip(out["state"][0], 0, 9) - np.clip(reading, 0, 9)))
            expected_delta.append(np.round(np.clip(out["state"], 0, 9).mean(0) - np.clip(reading, 0, 9)))
            real_delta.append(episode["state"][t0 + horizon] - episode["state"][t0])
            if len(grids) < 3:
                grids.append((episode["image"][t0:t0 + 1 + horizon], np.concatenate(
                    [episode["image"][t0:t0 + 1], (imagined * 255).astype(np.uint8)])))
    return {"mse": np.array(mse), "mse_mean": np.array(mse_mean), "baseline": np.array(base),
            "ssim": np.array(sim), "ssim_mean": np.array(sim_mean), "ssim_baseline": np.array(sim_base),
            "return": np.array(returns), "return_expected": np.array(expected_returns),
            "return_real": np.array(real_returns),
            "pred_delta": np.array(pred_delta), "pred_delta_own": np.array(own_delta),
            "pred_delta_expected": np.array(expected_delta),
            "real_delta": np.array(real_delta), "grids": grids}


def place_table_by_wood(model: RSSMWorldModel, worlds: range = range(1, 9), veto: float = 0.05) -> dict:
    """Raw imagined success of "place table" with 0-3 wood (collected for real) in each of ``worlds``.

    ``told_apart``: the share of worlds where a veto at ``veto`` (``RafaConfig.imagine_veto``) stops the
    one-wood attempt and lets the two-wood one through.
    """
    imagination = Imagination(model, samples=64, seed=0, calibrate=False)
    per_world = []  # {wood in hand: raw estimate} for each world
    for seed in worlds:
        env = ObservationHistory(CrafterEnv(seed=seed), length=16)
        env.reset(seed=seed)
        for _ in range(3):
            env.step(0)
        estimates: dict[int, float] = {}
        for wood in range(4):
            if wood and not run_skill(env, "collect wood").ok:
                break
            estimates[env.unwrapped.inventory["wood"]] = imagination.check(env, "place table").raw_success_prob
        per_world.append(estimates)
    by_wood = {n: [e[n] for e in per_world if n in e] for n in range(4)}
    pairs = [(e[1], e[2]) for e in per_world if 1 in e and 2 in e]
    return {"worlds": len(worlds), "veto": veto, "by_wood": {str(n): [round(p, 3) for p in ps]
                                                               for n, ps in by_wood.items()},
            "mean_by_wood": {str(n): float(np.mean(ps)) for n, ps in by_wood.items() if ps},
            "told_apart": float(np.mean([one <= veto < two for one, two in pairs])) if pairs else 0.0}


def return_errors(result: dict[str, np.ndarray]) -> dict[str, float]:
    """Imagined vs real return over the horizon: means, and mean absolute errors against predicting zero."""
    real = result["return_real"]
    return {"real_mean": float(real.mean()), "imagined_mean": float(result["return"].mean()),
            "expected_mean": float(result["return_expected"].mean()),
            "imagined_mae": float(np.abs(result["return"] - real).mean()),
            "expected_mae": float(np.abs(result["return_expected"] - real).mean()),
            "zero_mae": float(np.abs(real).mean())}


def change_accuracy(pred: np.ndarray, real: np.ndarray, columns: slice) -> dict[str, float]:
    """Exact-match accuracy of predicted value changes, overall and where something changed."""
    p, r = np.round(pred[:, columns]), np.round(real[:, columns])
    changed = (p != 0) | (r != 0)
    return {"all": float((p == r).mean()), "changed": float((p == r)[changed].mean()) if changed.any() else 1.0,
            "no_change_baseline": float((r == 0).mean()), "changed_entries": int(changed.sum()),
            "real_changes_detected": float(((p == r) & (r != 0)).sum() / max(1, (r != 0).sum()))}


def imagined_steps_per_second(model: RSSMWorldModel, batch: int, steps: int, render: bool) -> float:
    world = WorldModelEnv(model, seed=0, render=render)
    episode = {"image": np.zeros((1, 64, 64, 3), np.uint8), "state": np.zeros((1, model.config.state_dim), np.float32)}
    world.reset_from(episode, np.zeros(0, np.int64), batch_size=batch)
    actions = np.random.default_rng(0).integers(0, model.config.action_dim, size=(steps, batch))
    world.step(actions[0])
    started = time.perf_counter()
    for a in actions[1:]:
        world.step(a)
    return batch * (steps - 1) / (time.perf_counter() - started)


def seconds_per_update(model: RSSMWorldModel, episodes: list[dict[str, np.ndarray]], batch: int,
                       updates: int) -> float:
    trainee = RSSMWorldModel(model.config).train()
    trainee.load_state_dict(model.state_dict())
    optimizer = torch.optim.Adam(trainee.parameters(), lr=1e-4)
    sampler = SequenceSampler(episodes, model.config.seq_len, seed=0)
    times = []
    for _ in range(updates + 1):
        data = sampler.sample(batch)
        started = time.perf_counter()
        loss, _ = trainee(data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return float(np.mean(times[1:]))


def write_grid(grids: list[tuple[np.ndarray, np.ndarray]], path: Path, every: int = 2) -> None:
    """Rows: real, imagined, |difference| for each window; columns: k = 0, every, 2*every, ... steps ahead."""
    rows = []
    for real, imagined in grids:
        picks = list(range(0, len(real), every))
        diff = np.abs(real.astype(np.int16) - imagined.astype(np.int16)).astype(np.uint8)
        for strip in (real, imagined, diff):
            rows.append(np.concatenate([np.pad(strip[k], ((1, 1), (1, 1), (0, 0)), constant_values=255)
                                        for k in picks], 1))
    grid = np.concatenate(rows, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHIPPED_CHECKPOINT))
    parser.add_argument("--data", default="data/world_model/heldout", help="held-out episode dataset (collected "
                        f"from seeds {HELDOUT_SEED}+ when missing)")
    parser.add_argument("--context", type=int, default=8)
    parser.add_argument("--stride", type=int, default=24)
    parser.add_argument("--samples", type=int, default=16, help="imagined rollouts per window for the expected-frame "
                        "error (the single-rollout error uses the first)")
    parser.add_argument("--batch", type=int, default=1024, help="parallel imagined rollouts for the speed test")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy 2-core box)")
    parser.add_argument("--out", default="runs/bench/world_model.json")
    args = parser.parse_args(argv)
    console = Console()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_world_model(args.model)
    data = Path(args.data)
    if not any(data.glob(SHARD_GLOB)):
        collect(CollectConfig(out=data, episodes=8, steps=300, seed=HELDOUT_SEED, episodes_per_shard=8))
    episodes = load_episodes(data)
    started = time.time()
    result = open_loop(model, episodes, args.context, max(HORIZONS), args.stride, args.samples)
    mse, base, sim_base = result["mse"].mean(0), result["baseline"].mean(0), result["ssim_baseline"].mean(0)
    n_items = 16
    report = {
        "model": args.model, "data": str(data), "episodes": len(episodes), "windows": len(result["mse"]),
        "context": args.context,
        "samples": args.samples,
        **{key: {str(k): {"mse": float(err[k - 1]), "psnr": float(10 * np.log10(1 / err[k - 1])),
                          "ssim": float(sim[k - 1]),
                          "baseline_mse": float(base[k - 1]),
                          "baseline_psnr": float(10 * np.log10(1 / base[k - 1])),
                          "baseline_ssim": float(sim_base[k - 1]),
                          "ratio": float(err[k - 1] / base[k - 1])} for k in HORIZONS}
           for key, err, sim in (("open_loop", mse, result["ssim"].mean(0)),
                                 ("open_loop_expected", result["mse_mean"].mean(0), result["ssim_mean"].mean(0)))},
        f"return_{max(HORIZONS)}": return_errors(result),
        **{name: {
            "inventory": change_accuracy(result[key], result["real_delta"], slice(0, n_items)),
            "achievements": change_accuracy(result[key], result["real_delta"], slice(n_items, n_items + 22)),
        } for name, key in (("change_accuracy_16", "pred_delta"), ("change_accuracy_16_own_start", "pred_delta_own"),
                            ("change_accuracy_16_expected", "pred_delta_expected"))},
        "imagined_steps_per_s": {
            f"latent_batch{args.batch}": imagined_steps_per_second(model, args.batch, 32, render=False),
            "with_frames_batch256": imagined_steps_per_second(model, 256, 8, render=True),
        },
        "train_s_per_update_batch8": seconds_per_update(model, episodes, 8, 3),
        "place_table_by_wood": place_table_by_wood(model),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "skills": len(SKILL_NAMES),
    }
    report["wall_s"] = round(time.time() - started, 1)
    grid = Path(args.out).with_suffix(".png")
    write_grid(result["grids"], grid)
    report["grid_png"] = str(grid)

    table = Table(title=f"World model {Path(args.model).name}: open loop on {report['windows']} held-out windows")
    for col in ("steps ahead", "prediction", "MSE", "PSNR dB", "SSIM", "copy-last MSE", "copy-last PSNR",
                "copy-last SSIM", "MSE ratio"):
        table.add_column(col)
    for key, what in (("open_loop", "one rollout"), ("open_loop_expected", f"mean of {args.samples}")):
        for k, row in report[key].items():
            table.add_row(k, what, f"{row['mse']:.4f}", f"{row['psnr']:.1f}", f"{row['ssim']:.3f}",
                          f"{row['baseline_mse']:.4f}", f"{row['baseline_psnr']:.1f}", f"{row['baseline_ssim']:.3f}",
                          f"{row['ratio']:.2f}")
    console.print(table)
    ret = report[f"return_{max(HORIZONS)}"]
    console.print(f"return over {max(HORIZONS)} steps: real {ret['real_mean']:.3f}, "
                  f"imagined {ret['imagined_mean']:.3f} "
                  f"(mean of {args.samples}: {ret['expected_mean']:.3f}); mean abs error {ret['imagined_mae']:.3f} "
                  f"({ret['expected_mae']:.3f}) vs {ret['zero_mae']:.3f} for predicting zero")
    for kind, start in (("change_accuracy_16", "the real start"), ("change_accuracy_16_own_start", "its reading"),
                        ("change_accuracy_16_expected", f"its reading, mean of {args.samples} rollouts")):
        for name, acc in report[kind].items():
            console.print(f"{name} change over 16 steps (from {start}): exact {acc['all']:.1%} (no-change baseline "
                          f"{acc['no_change_baseline']:.1%}), on changed entries {acc['changed']:.1%}, real changes "
                          f"detected {acc['real_changes_detected']:.1%}")
    counting = report["place_table_by_wood"]
    console.print(f"place table (costs 2 wood), raw imagined success by wood in hand over {counting['worlds']} worlds: "
                  f"{', '.join(f'{n}: {p:.2f}' for n, p in counting['mean_by_wood'].items())}; one wood vetoed and two "
                  f"let through (veto {counting['veto']}) in {counting['told_apart']:.0%} of worlds")
    speed = report["imagined_steps_per_s"]
    console.print(f"imagined steps/s: {', '.join(f'{k} {v:,.0f}' for k, v in speed.items())}; "
                  f"train {report['train_s_per_update_batch8']:.2f} s/update (batch 8 x {model.config.seq_len}); "
                  f"peak RSS {report['peak_rss_mb']:.0f} MB; grid {grid}")
    write_json_atomic(args.out, report)
    return report


if __name__ == "__main__":
    main()
