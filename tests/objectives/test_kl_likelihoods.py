import math

import torch
from torch.distributions import Bernoulli as TBernoulli
from torch.distributions import Normal, kl_divergence

from semivae.objectives import gaussian_kl_standard, make_likelihood, reparameterise


def test_closed_form_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4) * 0.5
    exact = gaussian_kl_standard(mu, logvar)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 3, 4)  # (S, B, D)
    q = Normal(mu, torch.exp(0.5 * logvar))
    mc = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean(0)
    torch.testing.assert_close(mc, exact, atol=0.03, rtol=0.01)
    torch.testing.assert_close(exact, kl_divergence(q, Normal(0.0, 1.0)).sum(-1))


def test_kl_is_zero_for_the_prior():
    assert gaussian_kl_standard(torch.zeros(2, 5), torch.zeros(2, 5)).abs().max() < 1e-7


def test_reparameterise_has_the_right_moments():
    torch.manual_seed(0)
    mu, logvar = torch.full((100_000, 1), 2.0), torch.full((100_000, 1), math.log(0.25))
    z = reparameterise(mu, logvar)
    assert abs(z.mean() - 2.0) < 0.01 and abs(z.std() - 0.5) < 0.01


def test_bernoulli_log_prob():
    lik = make_likelihood("bernoulli", (2, 3))
    logits, x = torch.randn(4, 2, 3), torch.rand(4, 2, 3).round()
    ref = TBernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(x, logits), ref)
    assert torch.all((lik.mean(logits) > 0) & (lik.mean(logits) < 1))


def test_gaussian_log_prob_fixed_and_learned():
    x, mean = torch.randn(4, 5), torch.randn(4, 5)
    fixed = make_likelihood("gaussian-fixed", (5,))
    torch.testing.assert_close(fixed.log_prob(x, mean), Normal(mean, 1.0).log_prob(x).sum(1))
    assert not list(fixed.parameters())
    learned = make_likelihood("gaussian", (5,))
    assert [p.shape for p in learned.parameters()] == [torch.Size([5])]
    with torch.no_grad():
        learned.log_sigma.fill_(math.log(0.5))
    torch.testing.assert_close(learned.log_prob(x, mean), Normal(mean, 0.5).log_prob(x).sum(1))
