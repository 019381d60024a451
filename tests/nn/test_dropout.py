import pytest
import torch

from semivae.nn import Dropout


def test_dropout_keeps_units_with_probability_one_minus_p_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(400, 500)
    y = Dropout(0.3).train()(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # 200,000 draws: sd 0.001
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased in expectation, as nn.Dropout


def test_dropout_gradient_is_the_mask():
    torch.manual_seed(1)
    x = torch.randn(64, 32, requires_grad=True)
    y = Dropout(0.5).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_dropout_edge_rates_and_eval_match_pytorch(p):
    x = torch.randn(8, 16)
    assert torch.equal(Dropout(p).train()(x), torch.nn.Dropout(p).train()(x))
    assert torch.equal(Dropout(0.5).eval()(x), x)
