import torch

from semivae.data.sampler import MixedBatchSampler


def _g():
    return torch.Generator().manual_seed(0)


def test_every_batch_is_one_to_one_and_labelled_points_are_upsampled():
    unl, lab = torch.arange(1000), torch.arange(10)
    s = MixedBatchSampler(unl, lab, batch_size=64, generator=_g())
    batches = list(s)
    assert len(batches) == len(s) == 1000 // 32
    assert all(len(u) == 32 and len(l) == 32 for u, l in batches)
    seen_unl = torch.cat([u for u, _ in batches])
    assert len(set(seen_unl.tolist())) == len(seen_unl)  # no unlabelled point twice in an epoch
    counts = torch.bincount(torch.cat([l for _, l in batches]), minlength=10)
    assert counts.min() >= 90  # 10 labels cycled ~99 times each: upsampled, evenly


def test_ratio_option():
    s = MixedBatchSampler(torch.arange(300), torch.arange(50), batch_size=40, label_ratio=0.25, generator=_g())
    u, l = next(iter(s))
    assert (len(u), len(l)) == (32, 8)


def test_single_pool_edge_cases():
    sup = list(MixedBatchSampler(torch.zeros(0), torch.arange(100), batch_size=32, generator=_g()))
    assert all(len(u) == 0 and len(l) == 32 for u, l in sup) and len(sup) == 3
    uns = list(MixedBatchSampler(torch.arange(100), torch.zeros(0), batch_size=32, generator=_g()))
    assert all(len(l) == 0 and len(u) == 32 for u, l in uns)
    tiny = list(MixedBatchSampler(torch.zeros(0), torch.arange(10), batch_size=32, generator=_g()))
    assert len(tiny) == 1 and len(tiny[0][1]) == 10  # a pool smaller than a batch is one batch


def test_same_seed_same_batches():
    a = [torch.cat(b) for b in MixedBatchSampler(torch.arange(200), torch.arange(7), 16, generator=_g())]
    b = [torch.cat(b) for b in MixedBatchSampler(torch.arange(200), torch.arange(7), 16, generator=_g())]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
