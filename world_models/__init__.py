"""The imagining: learned dynamics (RSSM), imagined rollouts as an env, metrics, training."""

from pathlib import Path

#: The shipped world-model checkpoint (tiny RSSM trained on Crafter; see its README.md card).
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "rssm-crafter-tiny"
