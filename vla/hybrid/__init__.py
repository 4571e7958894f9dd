"""HybridVLA: collaborative diffusion + autoregression in one transformer (https://arxiv.org/abs/2503.10631)."""

from vla.hybrid.configuration_hybrid import HybridConfig
from vla.hybrid.modeling_hybrid import HybridVLAPolicy, collaborative_ensemble
from vla.hybrid.processor_hybrid import preprocess, tokenize_instructions

__all__ = ["HybridConfig", "HybridVLAPolicy", "collaborative_ensemble", "preprocess", "tokenize_instructions"]
