"""Metrics checked against values computed by hand on tiny examples."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from tuijian.evaluation import metrics as M

# user 0: hits at ranks 1 and 3, 4 relevant items; user 1: hit at rank 2, 1 relevant; user 2: none
HITS = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
N_TRUTH = np.array([4, 1, 2])


def test_precision_recall_hit():
    assert M.precision(HITS, N_TRUTH, 4).tolist() == [0.5, 0.25, 0.0]
    assert M.precision(HITS, N_TRUTH, 1).tolist() == [1.0, 0.0, 0.0]
    assert M.recall(HITS, N_TRUTH, 4).tolist() == [0.5, 1.0, 0.0]
    assert M.recall(HITS, N_TRUTH, 2).tolist() == [0.25, 1.0, 0.0]
    assert M.hit_rate(HITS, N_TRUTH, 1).tolist() == [1.0, 0.0, 0.0]
    assert M.hit_rate(HITS, N_TRUTH, 2).tolist() == [1.0, 1.0, 0.0]


def test_recall_capped_divides_by_min_k_and_truth():
    # user 0 at k=2: 1 hit of min(2, 4) = 2 -> 0.5 (plain recall 1/4); at k=4: 2 / 4
    assert M.recall_capped(HITS, N_TRUTH, 2).tolist() == [0.5, 1.0, 0.0]
    assert M.recall_capped(HITS, N_TRUTH, 4).tolist() == [0.5, 1.0, 0.0]
    assert M.recall_capped(HITS, N_TRUTH, 1).tolist() == [1.0, 0.0, 0.0]
    # with n_truth <= k it equals plain recall
    few = np.array([2, 1, 2])
    assert M.recall_capped(HITS, few, 4).tolist() == M.recall(HITS, few, 4).tolist()


def test_ndcg_by_hand():
    dcg0 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg0 = sum(1 / math.log2(i + 2) for i in range(4))
    expected = [dcg0 / idcg0, (1 / math.log2(3)) / 1.0, 0.0]
    assert M.ndcg(HITS, N_TRUTH, 4) == pytest.approx(expected)
    # at k=2 the ideal for user 0 has 2 hits, not 4
    assert M.ndcg(HITS, N_TRUTH, 2)[0] == pytest.approx(1.0 / (1 + 1 / math.log2(3)))


def test_mrr_and_map():
    assert M.mrr(HITS, N_TRUTH, 4).tolist() == [1.0, 0.5, 0.0]
    # AP@4 user 0: (1/1 + 2/3) / min(4, 4); user 1: (1/2) / 1
    assert M.average_precision(HITS, N_TRUTH, 4) == pytest.approx([(1 + 2 / 3) / 4, 0.5, 0.0])


def test_coverage_and_gini():
    top = np.array([[0, 1], [0, 1], [0, -1]])
    assert M.item_coverage(top, 4) == 0.5
    # counts sorted [0, 0, 2, 3] over 4 items: G = sum((2i-n-1) c_i) / (n * total)
    assert M.gini_index(top, 4) == pytest.approx(((1 * 2) + (3 * 3)) / (4 * 5))
    even = np.array([[0, 1], [2, 3]])
    assert M.gini_index(even, 4) == pytest.approx(0.0)


def test_novelty():
    pop = np.array([8, 4, 1, 0])
    top = np.array([[0, 1], [2, -1]])
    # p = pop / 8: item 0 -> 0 bits, item 1 -> 1 bit, item 2 -> 3 bits
    assert M.novelty(top, pop, 8).tolist() == [0.5, 3.0]


def test_intra_list_diversity():
    cats = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32))
    top = np.array([[0, 1, 2], [0, 1, -1]])
    # user 0: pairs (0,1) sim 1, (0,2) 0, (1,2) 0 -> mean dissimilarity 2/3; user 1: 0
    assert M.intra_list_diversity(top, cats) == pytest.approx([2 / 3, 0.0])


def test_rmse_mae():
    assert M.rmse(np.array([3.0, 5.0]), np.array([4.0, 4.0])) == pytest.approx(1.0)
    assert M.mae(np.array([3.0, 6.0]), np.array([4.0, 4.0])) == pytest.approx(1.5)
