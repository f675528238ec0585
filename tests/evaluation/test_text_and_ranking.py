"""Text generation (exact match, corpus BLEU, ROUGE-L) against hand-computed cases and NLTK, and ranking
(NDCG@k, recall@k, precision@k, AUC) against scikit-learn and MLflow's conventions."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from aitip.errors import InvalidInput
from aitip.evaluation.metrics import corpus_bleu, lcs_length, ranking, rouge_l, text_generation, tokenize


def test_bleu_hand_computed():
    # 1-grams 5/6 (the second "the" is clipped), 2-grams 3/5, 3-grams 2/4, 4-grams 1/3; equal lengths: BP 1.
    result = text_generation(["the cat sat on a mat"], ["the cat sat on the mat"])
    assert result["metrics"]["bleu"] == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, rel=1e-12)
    precisions = [order["precision"] for order in result["tables"]["bleu_orders"]]
    assert precisions == pytest.approx([5 / 6, 3 / 5, 1 / 2, 1 / 3])
    # Every n-gram matches but the hypothesis is 4 tokens against 6: brevity penalty exp(1 - 6/4).
    short = text_generation(["the cat sat on the mat"], ["the cat sat on"])["metrics"]
    assert short["bleu"] == pytest.approx(math.exp(-0.5), rel=1e-12)
    assert short["bleu_brevity_penalty"] == pytest.approx(math.exp(-0.5), rel=1e-12)
    # No 4-gram in common anywhere: BLEU-4 is 0.
    assert text_generation(["a b c d e"], ["a b c x e"])["metrics"]["bleu"] == 0.0


def test_bleu_agrees_with_nltk_corpus_bleu():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    rng = random.Random(4)
    words = "the a cat dog sat ran on under mat rug quickly slowly".split()
    references, hypotheses = [], []
    for _ in range(60):
        reference = [rng.choice(words) for _ in range(rng.randint(6, 14))]
        hypothesis = [token if rng.random() < 0.75 else rng.choice(words) for token in reference]
        hypothesis = hypothesis[:rng.randint(5, len(hypothesis))]
        second = reference[:] if rng.random() < 0.5 else [rng.choice(words) for _ in range(len(reference))]
        references.append([reference, second])
        hypotheses.append(hypothesis)
    ours = corpus_bleu(references, hypotheses)["bleu"]
    assert 0.1 < ours < 0.9
    assert ours == pytest.approx(nltk_bleu.corpus_bleu(references, hypotheses), rel=1e-12)


def test_rouge_l_hand_computed_and_lcs_against_dynamic_programming():
    assert rouge_l("the cat sat on the mat".split(), "the cat on mat".split()) == pytest.approx(2 * 4 / (6 + 4))
    assert rouge_l([], ["a"]) == 0.0
    rng = random.Random(9)
    for _ in range(300):
        first = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        second = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        table = [[0] * (len(second) + 1) for _ in range(len(first) + 1)]
        for i, x in enumerate(first):
            for j, y in enumerate(second):
                table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
        assert lcs_length(first, second) == table[-1][-1]


def test_text_generation_metrics_and_references_lists():
    result = text_generation(
        ["Paris is the capital.", ["It rains.", "it is raining"], "你好世界"],
        ["Paris is the capital.", "it is raining", "你好 世界"])
    metrics = result["metrics"]
    assert metrics["exact_match"] == pytest.approx(2 / 3)  # raw strings; the spaced Chinese one differs
    # Chinese characters are tokens of their own, so the spaced prediction matches its reference.
    assert tokenize("你好 世界") == tokenize("你好世界") == ["你", "好", "世", "界"]
    assert metrics["rougeL"] == pytest.approx(1.0)
    assert result["task"] == "text_generation" and metrics["example_count"] == 3
    assert text_generation(["A B"], ["a b"])["metrics"]["rougeL"] == 1.0  # ROUGE-L is case-blind...
    assert text_generation(["A B C D"], ["a b c d"])["metrics"]["bleu"] == 0.0  # ...BLEU is not
    with pytest.raises(InvalidInput, match="strings"):
        text_generation(["a"], [None])
    with pytest.raises(InvalidInput, match="differ in length"):
        text_generation(["a", "b"], ["a"])


def test_ndcg_agrees_with_scikit_learn_ties_and_graded_relevance_included():
    rng = np.random.default_rng(8)
    queries, per_query = 30, 12
    relevance = rng.integers(0, 4, size=(queries, per_query)).astype(float)
    relevance[3] = 0  # a query with nothing relevant scores 0, in both
    scores = np.round(rng.random((queries, per_query)), 1)  # ties
    groups = np.repeat([f"q{i:02d}" for i in range(queries)], per_query)
    shuffle = rng.permutation(queries * per_query)  # the rows of a query need not be together
    for k in (1, 5, 10, 20):
        result = ranking(relevance.ravel()[shuffle], scores.ravel()[shuffle], groups[shuffle], k=k)
        assert result["metrics"][f"ndcg_at_{k}"] == pytest.approx(ndcg_score(relevance, scores, k=k), rel=1e-12)
    metrics = ranking(relevance.ravel(), scores.ravel(), groups, k=5)["metrics"]
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(relevance.ravel() > 0, scores.ravel()), rel=1e-12)
    assert metrics["query_count"] == queries and metrics["example_count"] == queries * per_query


def test_recall_and_precision_at_k_hand_computed():
    # Query a: relevant rows 0, 2, 3; by score rows 0, 1, 2 come first -> recall@3 2/3, precision@3 2/3,
    #   DCG@3 1 + 1/log2(4) against the ideal 2 + 1/log2(3) + 1/log2(4).
    # Query b: two rows, the relevant one first -> recall 1, precision over min(k, 2) rows 1/2, NDCG 1.
    # Query c: nothing relevant -> recall, precision and NDCG 0 (MLflow's and scikit-learn's convention).
    relevance = [1, 0, 1, 2, 0, 3, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.1, 0.0, 0.6, 0.2, 0.5]
    groups = ["a", "a", "a", "a", "a", "b", "b", "c"]
    metrics = ranking(relevance, scores, groups, k=3)["metrics"]
    assert metrics["recall_at_3"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert metrics["precision_at_3"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    ndcg_a = (1 + 1 / math.log2(4)) / (2 + 1 / math.log2(3) + 1 / math.log2(4))
    assert metrics["ndcg_at_3"] == pytest.approx((ndcg_a + 1 + 0) / 3)


def test_ranking_refuses_bad_input():
    with pytest.raises(InvalidInput, match="positive integer"):
        ranking([1, 0], [0.2, 0.1], k=0)
    with pytest.raises(InvalidInput, match="negative"):
        ranking([1, -1], [0.2, 0.1])
    with pytest.raises(InvalidInput, match="differ in length"):
        ranking([1, 0], [0.2, 0.1], groups=["a"])
