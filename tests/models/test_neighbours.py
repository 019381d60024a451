"""The feature bank: k-th nearest-neighbour distances on the unit sphere, checked by brute force."""

import torch

from semivae.models.neighbours import FeatureBank, unit_features


def brute_kth(bank: torch.Tensor, h: torch.Tensor, k: int) -> torch.Tensor:
    return torch.cdist(unit_features(h), bank.float()).sort(1).values[:, k - 1]


def test_kth_distance_matches_brute_force_across_chunks():
    g = torch.Generator().manual_seed(0)
    bank = unit_features(torch.randn(300, 16, generator=g))
    h = torch.randn(40, 16, generator=g) * 5  # raw features: the score normalises them
    for k, chunk in [(1, 7), (5, 64), (10, 1000)]:
        got = FeatureBank(bank).kth_distance(h, k, chunk=chunk)
        assert torch.allclose(got, brute_kth(bank, h, k), atol=1e-5), (k, chunk)


def test_a_bank_point_is_at_distance_zero_and_the_far_side_of_the_sphere_at_two():
    bank = FeatureBank(torch.eye(4).half())
    d = bank.kth_distance(torch.tensor([[3.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]), k=1)
    assert torch.allclose(d, torch.tensor([0.0, 2 ** 0.5]), atol=1e-3)  # -e1 is sqrt(2) from e2..e4
    # (1,1,1,1)/2 is at cosine 0.5 from every e_i: distance sqrt(2 - 2 * 0.5) = 1, whatever k
    assert torch.allclose(bank.kth_distance(torch.tensor([[1.0, 1.0, 1.0, 1.0]]), k=4), torch.tensor([1.0]), atol=1e-3)


def test_k_beyond_the_bank_is_its_farthest_point():
    bank = unit_features(torch.randn(5, 3, generator=torch.Generator().manual_seed(1)))
    h = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(FeatureBank(bank).kth_distance(h, k=50), brute_kth(bank, h, 5), atol=1e-5)
