"""Random-policy Crafter episodes with their actions removed: non-expert data for the latent action model.

``python -m vla.univla.rollouts --out data/crafter-random --worlds 20 --steps 150`` writes one shard per world
in the one episode format, ``action`` = :data:`~tools.episode_dataset.NO_ACTION` on every row (the actions
are dropped, not stored), instruction ``"random"``. World seeds start at 5000, away from the expert data's
(0-92) and the held-out evals' (1000+, 2000+). A rerun skips the shards that exist.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tools.envs.crafter import CrafterEnv
from tools.episode_dataset import NO_ACTION, EpisodeBuffer, write_dataset_card, write_shard

INSTRUCTION = "random"
FIRST_SEED = 5000


def random_episode(seed: int, steps: int) -> EpisodeBuffer:
    """One world played by uniformly random actions for ``steps`` steps (or until death), actions removed."""
    env = CrafterEnv(seed=seed)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    episode = EpisodeBuffer(INSTRUCTION)
    for _ in range(steps):
        action = int(rng.integers(env.action_space.n))
        episode.add(obs, NO_ACTION, 0.0)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    episode.add(obs, NO_ACTION, 0.0)  # the frame the last action led to: the last pair's o_t+1
    env.close()
    return episode


def collect_random(out: str | Path, worlds: int, steps: int, first_seed: int = FIRST_SEED) -> int:
    """Write ``worlds`` random episodes under ``out/data/``; returns rows in the dataset."""
    rows = 0
    for seed in range(first_seed, first_seed + worlds):
        path = Path(out) / "data" / f"seed-{seed:06d}.parquet"
        if path.is_file():
            import pyarrow.parquet as pq

            rows += pq.ParquetFile(path).metadata.num_rows
            continue
        rows += write_shard(path, [random_episode(seed, steps)], indices=[seed])
    write_dataset_card(out, "Crafter random-policy episodes, actions removed",
                       {"env": "Crafter (tools.envs.crafter.CrafterEnv)", "policy": "uniform random actions",
                        "seeds": f"{first_seed}-{first_seed + worlds - 1}", "frames": rows,
                        "command": f"python -m vla.univla.rollouts --out {out} --worlds {worlds} --steps {steps}"},
                       {INSTRUCTION: worlds}, action=f"{NO_ACTION} on every row (actions removed)")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/crafter-random")
    parser.add_argument("--worlds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    args = parser.parse_args(argv)
    rows = collect_random(args.out, args.worlds, args.steps, args.first_seed)
    print(f"{rows} rows in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
