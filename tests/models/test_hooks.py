"""The loss hooks' own parts: the virtual adversarial direction (VAT) of the consistency hook."""

import torch
from torch import nn

from semivae.models.base import Inference
from semivae.models.hooks import adversarial_direction, unit


class Linear(nn.Module):
    """A softmax classifier pi(x) = softmax(W x) with the model contract's ``inference``, and a
    dropout that would scramble the direction if the search ran in training mode."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)  # (K, D)
        self.drop = nn.Dropout(0.5)

    def inference(self, x, mask=None, sample=True):
        return Inference(h=x, logits={"y": self.drop(x.flatten(1)) @ self.w.T})  # (B, K)


def test_the_direction_is_the_one_that_moves_a_linear_classifier_most():
    torch.manual_seed(0)
    w = torch.randn(2, 12)
    model = Linear(w).train()
    x = torch.randn(6, 3, 4)  # any shape: the direction is per point over its own values
    r = adversarial_direction(model, x)
    assert r.shape == x.shape and torch.allclose(r.flatten(1).norm(dim=1), torch.ones(6), atol=1e-5)
    # two classes: KL(pi(x) || pi(x + d)) grows with d only along w_1 - w_0, whatever x is
    cosine = (r.flatten(1) @ (w[1] - w[0])) / (w[1] - w[0]).norm()  # (B,)
    assert (cosine.abs() > 0.99).all()
    assert model.training and model.w.grad is None  # mode restored, weights untouched


def test_padded_steps_get_no_part_of_the_direction():
    torch.manual_seed(1)
    model = Linear(torch.randn(3, 10 * 2))
    x = torch.randn(4, 10, 2)  # (B, T, C)
    mask = torch.arange(10)[None] < torch.tensor([10, 7, 3, 1])[:, None]  # (B, T)
    r = adversarial_direction(model, x, mask)
    assert (r[~mask] == 0).all() and torch.allclose(r.flatten(1).norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(unit(torch.ones(2, 5)).norm(dim=1), torch.ones(2))
