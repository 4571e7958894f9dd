"""The LoRA wrapper every fine-tuned model here shares: the planner (``agents.finetune``) and the
HybridVLA SmolLM2 backbone (``vla.hybrid.backbone_llm``). It lives in ``tools/`` because both the
agents and the policies use it and neither may import the other (DESIGN §2).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel


@dataclass
class LoraSettings:
    """Which weights get low-rank updates. Attention-only at small rank keeps the adapter a few MB.

    `top_layers` adapts only the last N decoder layers: backpropagation then stops at the lowest
    adapted layer, so a step costs a forward pass plus N layers of backward instead of three
    forwards' worth (0 = all layers).
    """

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    top_layers: int = 0

    def peft_config(self, num_layers: int) -> LoraConfig:
        layers = list(range(num_layers - self.top_layers, num_layers)) if 0 < self.top_layers < num_layers else None
        return LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), layers_to_transform=layers,
                          task_type="CAUSAL_LM")


def add_lora(model: PreTrainedModel, settings: LoraSettings, seed: int = 0) -> PeftModel:
    """Wrap `model` (in place) with fresh LoRA weights; `seed` fixes their random initialisation."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():  # peft 0.21 calls a transformers 5 method deprecated for v6: noise for users
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, settings.peft_config(model.config.num_hidden_layers))
