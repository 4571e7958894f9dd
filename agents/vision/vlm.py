"""The VLM built here, LLaVA-style: vision encoder -> projector -> SmolLM2-135M with a LoRA adapter.

The frame becomes 81 image tokens (one per tile, ``tools.models.tile_encoder``) spliced into the chat prompt
where the user message holds its image. The projector maps each token into SmolLM2's embedding space:
an MLP over the token's features, plus its reading heads' class probabilities times learnable class
embeddings that start at the embeddings of the class names (``"tree"``, ``"3"``), plus a learnable
position embedding that starts at the embedding of the tile's offset words (``"2 north-east"``) or slot
item name. So training starts from a projector that already names what each tile shows, and the few
hundred CPU steps affordable here go to teaching the LoRA-adapted LM to answer from it.

Saved as a folder: ``encoder/`` and ``projector/`` (``config.json`` + ``model.safetensors`` each),
``adapter/`` (peft LoRA), ``vlm.json`` (what was trained, on what, with which command).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tools.envs.crafter import ITEM_NAMES, SEMANTIC_NAMES, direction_words
from tools.models.hub import HubMixin
from tools.models.tile_encoder import GRID, SLOTS, VisionEncoder
from tools.vlm_data import MAX_COUNT, NUM_CLASSES, VIEW_COLS, VIEW_ROWS, check_frame

SYSTEM = "You read a Crafter game frame. Answer briefly from the image."
IMAGE_MARK = "<image>"
META = "vlm.json"


class Projector(nn.Module, HubMixin, library_name="embodia", tags=["vlm-projector"]):
    """Encoder tokens (+ head probabilities) -> LM embeddings, one per tile."""

    def __init__(self, width: int = 64, hidden: int = 576) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)
        self.classes = nn.Parameter(torch.zeros(NUM_CLASSES, hidden))
        self.counts = nn.Parameter(torch.zeros(MAX_COUNT + 1, hidden))
        self.position = nn.Parameter(torch.zeros(GRID * GRID, hidden))

    def init_from_words(self, embed: nn.Embedding, tokenizer) -> None:
        """Start the class, count and position embeddings at the mean embedding of their words."""

        def words(text: str) -> torch.Tensor:
            ids = tokenizer(" " + text, add_special_tokens=False)["input_ids"]
            return embed.weight[ids].mean(0)

        with torch.no_grad():
            for i in range(NUM_CLASSES):
                self.classes[i] = words(SEMANTIC_NAMES.get(i, "darkness").replace("_", " "))
            for k in range(MAX_COUNT + 1):
                self.counts[k] = words(str(k))
            for y in range(VIEW_ROWS):
                for x in range(VIEW_COLS):
                    dx, dy = x - VIEW_COLS // 2, y - VIEW_ROWS // 2
                    self.position[y * GRID + x] = words(f"{abs(dx) + abs(dy)} {direction_words(dx, dy)}") * 0.5
            for s, item in enumerate(ITEM_NAMES):
                self.position[VIEW_ROWS * GRID + s] = words(item.replace("_", " "))

    def forward(self, tokens: torch.Tensor, heads: dict[str, torch.Tensor]) -> torch.Tensor:
        view = VIEW_ROWS * GRID
        cells = heads["cells"].softmax(-1) @ self.classes  # (B, 63, H)
        counts = heads["counts"].softmax(-1) @ self.counts  # (B, 16, H)
        rest = tokens.new_zeros(tokens.shape[0], GRID * GRID - view - SLOTS, self.classes.shape[1])
        words = torch.cat([cells, counts, rest], 1)
        return self.mlp(tokens) + words + self.position


class EmbodiaVLM(nn.Module):
    """Encoder (frozen), projector and LoRA-adapted LM; ``embed`` builds the input embeddings of a chat."""

    def __init__(self, encoder: VisionEncoder, projector: Projector, lm, tokenizer) -> None:
        super().__init__()
        self.encoder, self.projector, self.lm, self.tokenizer = encoder, projector, lm, tokenizer
        self.encoder.requires_grad_(False)

    @property
    def embedding(self) -> nn.Embedding:
        return self.lm.get_input_embeddings()

    def image_embeds(self, frames: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.encoder(frames)
        return self.projector(out["tokens"], out)

    def prompt_parts(self, question: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the image in the chat prompt for ``question`` (generation prompt on)."""
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{IMAGE_MARK}\n{question}"}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        before, _, after = text.partition(IMAGE_MARK)
        ids = [self.tokenizer(part, add_special_tokens=False)["input_ids"] for part in (before, after)]
        return ids[0], ids[1]

    def sequence(self, frame_embeds: torch.Tensor, before: list[int], after: list[int]) -> torch.Tensor:
        """(T, H) embeddings of one prompt with its image tokens in place."""
        emb = self.embedding
        return torch.cat([emb(torch.tensor(before)), frame_embeds, emb(torch.tensor(after))], 0)

    def loss(self, frames: torch.Tensor, questions: list[str], answers: list[str]) -> torch.Tensor:
        """Next-token loss on the answers only (right-padded batch)."""
        images = self.image_embeds(frames)
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        rows, targets = [], []
        for image, q, a in zip(images, questions, answers, strict=True):
            before, after = self.prompt_parts(q)
            answer = self.tokenizer(a, add_special_tokens=False)["input_ids"] + [end]
            prompt = self.sequence(image, before, after)
            rows.append(torch.cat([prompt, self.embedding(torch.tensor(answer))], 0))
            targets.append([-100] * len(prompt) + answer)
        length = max(len(r) for r in rows)
        hidden = rows[0].shape[1]
        embeds = torch.zeros(len(rows), length, hidden)
        mask = torch.zeros(len(rows), length, dtype=torch.long)
        labels = torch.full((len(rows), length), -100)
        for i, (r, t) in enumerate(zip(rows, targets, strict=True)):
            embeds[i, : len(r)], mask[i, : len(r)], labels[i, : len(t)] = r, 1, torch.tensor(t)
        return self.lm(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss

    @torch.inference_mode()
    def answer(self, frame: np.ndarray, question: str, max_tokens: int = 48) -> tuple[str, int, int]:
        """Greedy answer to ``question`` about ``frame``; (text, prompt tokens, completion tokens)."""
        frames = torch.from_numpy(np.ascontiguousarray(check_frame(frame)))[None]
        before, after = self.prompt_parts(question)
        embeds = self.sequence(self.image_embeds(frames)[0], before, after)[None]
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        out = self.lm.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
                               max_new_tokens=max_tokens, do_sample=False, eos_token_id=end,
                               pad_token_id=self.tokenizer.pad_token_id)
        new = out[0].tolist()
        return self.tokenizer.decode(new, skip_special_tokens=True).strip(), embeds.shape[1], len(new)

    @torch.inference_mode()
    def score(self, frame: np.ndarray, question: str, options: list[str]) -> list[float]:
        """Log-likelihood of each option as the answer (constrained decoding: only these can come out)."""
        frames = torch.from_numpy(np.ascontiguousarray(check_frame(frame)))[None]
        before, after = self.prompt_parts(question)
        prompt = self.sequence(self.image_embeds(frames)[0], before, after)
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        ids = [self.tokenizer(o, add_special_tokens=False)["input_ids"] + [end] for o in options]
        length = len(prompt) + max(len(i) for i in ids)
        embeds = torch.zeros(len(ids), length, prompt.shape[1])
        mask = torch.zeros(len(ids), length, dtype=torch.long)
        for k, option in enumerate(ids):
            row = torch.cat([prompt, self.embedding(torch.tensor(option))], 0)
            embeds[k, : len(row)], mask[k, : len(row)] = row, 1
        logp = self.lm(inputs_embeds=embeds, attention_mask=mask).logits.float().log_softmax(-1)
        return [sum(float(logp[k, len(prompt) + j - 1, t]) for j, t in enumerate(option))
                for k, option in enumerate(ids)]

    # --- saving and loading -----------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, **meta: object) -> Path:
        folder = Path(folder)
        self.encoder.save_pretrained(folder / "encoder")
        self.projector.save_pretrained(folder / "projector")
        self.lm.save_pretrained(folder / "adapter")
        (folder / META).write_text(json.dumps({"base_model": "smollm2-135m-instruct", **meta}, indent=2) + "\n")
        return folder


def base_lm(tiny: bool = False):
    """SmolLM2-135M-Instruct (embedded) and its tokenizer; ``tiny`` keeps only its first 2 of 30 decoder
    layers (pretrained weights, same tokenizer and width), for tests that must train in seconds."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tools.models.smollm2 import embedded_model_dir

    path = embedded_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if tiny:
        lm.model.layers = lm.model.layers[:2]
        lm.config.num_hidden_layers = 2
        if getattr(lm.config, "layer_types", None):
            lm.config.layer_types = lm.config.layer_types[:2]
    return lm, tokenizer


def load_vlm(folder: str | Path) -> EmbodiaVLM:
    """An EmbodiaVLM from a folder written by :meth:`EmbodiaVLM.save_pretrained` (LoRA loaded onto SmolLM2)."""
    from peft import PeftModel

    folder = Path(folder)
    missing = [p for p in ("encoder/config.json", "projector/config.json", "adapter/adapter_config.json", META)
               if not (folder / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not an embodia VLM folder (missing {', '.join(missing)}); "
                                "train one with `python -m agents.vision.train`")
    meta = json.loads((folder / META).read_text())
    lm, tokenizer = base_lm(tiny=bool(meta.get("tiny")))
    lm = PeftModel.from_pretrained(lm, folder / "adapter")
    vlm = EmbodiaVLM(VisionEncoder.from_pretrained(folder / "encoder"), Projector.from_pretrained(folder / "projector"),
                     lm, tokenizer)
    return vlm.eval()
