"""Configuration of the RT-H policy (Belkhale et al., "RT-H: Action Hierarchies Using Language", 2024,
https://arxiv.org/abs/2403.01823)."""

from __future__ import annotations

from dataclasses import dataclass

from vla.base import PolicyConfig


@dataclass
class RTHConfig(PolicyConfig):
    """RT-H: one small transformer asked two questions, (instruction, image) -> language motion, then
    (instruction, image, motion) -> action.

    Args:
        d_model: width of every token.
        n_layers: transformer blocks.
        n_heads: attention heads (must divide ``d_model``).
        patch_size: image patch side in pixels (a multiple of 4 dividing the image sides).
        max_instruction_len: instruction bytes kept.
        dropout: dropout inside the transformer while training.
        motions: the motion vocabulary (the high-level query's classes), set from the data by ``vla.train``:
            ``tools.language_motion.CRAFTER_MOTIONS`` when every phrase of the data is one of them, else the
            data's sorted phrases (Meta-World's are compositional).
        motion_loss_weight: weight of the motion cross-entropy beside the action loss.
        override_steps: env steps a corrected motion (``/motion ...`` in chat) replaces the predicted one.
        trainable: ``"all"`` trains every weight; ``"motion"`` only the motion query (its query token and head),
            so the action query answers exactly as before: fine-tuning on corrections (``vla.rth.corrections``).
    """

    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    patch_size: int = 16
    max_instruction_len: int = 20
    dropout: float = 0.1
    motions: tuple[str, ...] = ()
    motion_loss_weight: float = 1.0
    override_steps: int = 5
    trainable: str = "all"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.motions = tuple(str(m) for m in self.motions)
        height, width, _ = self.image_shape
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads must divide d_model, got {self.d_model=} {self.n_heads=}")
        if height % self.patch_size or width % self.patch_size or self.patch_size % 4:
            raise ValueError(f"patch_size must be a multiple of 4 dividing the image sides, got {self.patch_size=} "
                             f"{self.image_shape=}")
        if self.trainable not in ("all", "motion"):
            raise ValueError(f"trainable must be 'all' or 'motion', got {self.trainable=}")
        if len(set(self.motions)) != len(self.motions):
            raise ValueError("motions must be distinct phrases")
        if self.motion_loss_weight < 0 or self.override_steps < 1 or not 0 <= self.dropout < 1:
            raise ValueError(f"need motion_loss_weight >= 0, override_steps >= 1, 0 <= dropout < 1, got "
                             f"{self.motion_loss_weight=} {self.override_steps=} {self.dropout=}")

    @property
    def num_patches(self) -> int:
        return (self.image_shape[0] // self.patch_size) * (self.image_shape[1] // self.patch_size)

    @property
    def num_motions(self) -> int:
        """Classes of the motion head (at least one, so an untrained policy can be built)."""
        return max(1, len(self.motions))
