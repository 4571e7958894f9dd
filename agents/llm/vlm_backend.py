"""``transformers:embodia-vlm``: the VLM trained here (``agents.vision``) behind the one LLM interface.

Messages may carry OpenAI-style image parts (``{"type": "image", "image": uint8 HxWx3}``; ``image_url`` parts
are for served backends). A message with an image is answered by the VLM from that frame, with its LoRA on;
a text-only prompt (the planner's) runs the same SmolLM2 with the adapter off, i.e. the base model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agents.llm.base import LLM, Capabilities, LLMUsage, Messages, cut_at_stop


def split_image(messages: Messages) -> tuple[np.ndarray | None, str]:
    """The last image in ``messages`` and the text of the message that holds it (or of the last message)."""
    for message in reversed(messages):
        content = message.get("content", "")
        if isinstance(content, list):
            images = [p["image"] for p in content if p.get("type") == "image"]
            if images:
                return np.asarray(images[-1]), "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return None, ""


class VLMBackend(LLM):
    """The embodia VLM: image questions through the projector + LoRA; text through base SmolLM2."""

    capabilities = Capabilities(score=True, schema=False, stop=True, images=True, logprobs=True)

    def __init__(self, model: str = "embodia-vlm", *, device: str = "cpu") -> None:
        from agents.perception import DEFAULT_VLM
        from agents.vision.vlm import load_vlm

        if device not in ("cpu", "auto"):
            raise ValueError(f"transformers:embodia-vlm runs on the CPU here; got --device {device}")
        folder = DEFAULT_VLM if model == "embodia-vlm" else Path(model).expanduser()
        self.vlm = load_vlm(folder)
        self.name = f"transformers:{model}"
        self.usage = LLMUsage()

    def _text_ids(self, messages: Messages | str) -> list[int]:
        tok = self.vlm.tokenizer
        text = messages if isinstance(messages, str) else tok.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages], tokenize=False,
            add_generation_prompt=True)
        return tok(text, add_special_tokens=False)["input_ids"]

    @torch.inference_mode()
    def generate(self, messages: Messages, *, max_tokens: int = 128, stop: list[str] | None = None,
                 schema: dict | None = None) -> str:
        with self._track() as call:
            frame, question = split_image(messages)
            if frame is not None:
                text, call.prompt_tokens, call.completion_tokens = self.vlm.answer(frame, question, max_tokens)
            else:
                ids = torch.tensor([self._text_ids(messages)])
                with self.vlm.lm.disable_adapter():
                    out = self.vlm.lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                               max_new_tokens=max_tokens, do_sample=False,
                                               pad_token_id=self.vlm.tokenizer.pad_token_id)
                new = out[0, ids.shape[1]:].tolist()
                call.prompt_tokens, call.completion_tokens = ids.shape[1], len(new)
                text = self.vlm.tokenizer.decode(new, skip_special_tokens=True)
            return cut_at_stop(text, stop)

    @torch.inference_mode()
    def score(self, prompt: str | Messages, options: list[str]) -> list[float]:
        with self._track() as call:
            frame, question = (None, "") if isinstance(prompt, str) else split_image(prompt)
            if frame is not None:
                call.completion_tokens = len(options)
                return self.vlm.score(frame, question, options)
            tok = self.vlm.tokenizer
            prefix = self._text_ids(prompt)
            call.prompt_tokens = len(prefix)
            scores = []
            with self.vlm.lm.disable_adapter():
                for option in options:
                    ids = tok(tok.decode(prefix) + option, add_special_tokens=False)["input_ids"]
                    start = next((i for i, (a, b) in enumerate(zip(prefix, ids, strict=False)) if a != b),
                                 min(len(prefix), len(ids)))
                    logp = self.vlm.lm(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
                    scores.append(sum(float(logp[i - 1, ids[i]]) for i in range(max(start, 1), len(ids))))
                    call.completion_tokens += len(ids) - start
            return scores
