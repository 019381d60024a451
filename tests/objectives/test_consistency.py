"""The consistency hook: perturbations by data kind, the masked KL, and every model with
heads reporting and training it."""

import pytest
import torch

from semivae.objectives.consistency import (Consistency, affine_grid, elastic_field, erase_squares, jitter_series,
                                            scale_intensity, shift_images, warp_series)
from semivae.train import train


def test_a_zero_shift_is_the_identity_and_a_shift_moves_the_image():
    x = torch.zeros(3, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0
    assert torch.allclose(shift_images(x, 0.0), x, atol=1e-6)
    moved = shift_images(x, 2.0)
    assert moved.shape == x.shape and moved.min() >= 0 and moved.max() <= 1
    assert not torch.allclose(moved, x)


def test_series_jitter_keeps_the_shape_and_stays_close():
    x = torch.randn(4, 10, 3)
    j = jitter_series(x, 0.1)
    assert j.shape == x.shape and (j - x).abs().mean() < 0.3


def test_a_time_warp_keeps_the_ends_the_order_and_the_padding_of_each_series():
    torch.manual_seed(0)
    lengths = torch.tensor([12, 7, 1, 12])
    valid = torch.arange(12)[None, :] < lengths[:, None]  # (B, T)
    x = (torch.arange(12.0)[None, :, None] * torch.tensor([1.0, -2.0])).repeat(4, 1, 1) * valid[..., None]  # a ramp
    assert torch.equal(warp_series(x, valid, 0.0), x)
    w = warp_series(x, valid, 0.15)
    assert w.shape == x.shape and torch.equal(w[~valid], x[~valid])  # padding untouched
    first, last = w[:, 0], w[torch.arange(4), lengths - 1]
    assert torch.allclose(first, x[:, 0]) and torch.allclose(last, x[torch.arange(4), lengths - 1])
    for i, n in enumerate(lengths.tolist()):  # a ramp read along a monotone map stays ordered, and moved
        assert (w[i, 1:n, 0].diff() >= 0).all() and w[i, :n, 0].min() >= 0 and w[i, :n, 0].max() <= n - 1
    assert (w[0, :, 0] - x[0, :, 0]).abs().max() > 0.05
    c = Consistency(weight=1.0, threshold=0.0, kind="sequence", shift=0.0, noise=0.0, warp=0.1)
    assert torch.equal(c.perturb(x, valid)[~valid], x[~valid])  # the hook passes the batch's mask


def test_after_a_time_warp_each_step_is_taught_by_the_step_it_was_read_from():
    """Per-step heads (the paper's series model): the copy's step t holds x at a bent time, so its
    target is pi(x) there; a model whose logits follow the series exactly scores zero."""
    torch.manual_seed(0)
    lengths = torch.tensor([12, 7])
    valid = torch.arange(12)[None, :] < lengths[:, None]  # (B, T)
    ramp = torch.arange(12.0)[None, :, None].repeat(2, 1, 1) * valid[..., None]  # (B, T, 1)
    c = Consistency(weight=1.0, threshold=0.0, kind="sequence", shift=0.0, noise=0.0, warp=0.15, temperature=1.0)
    copy = c.perturb(ramp, valid)

    def logits(x):  # (B, T, 3): the class drifts along the ramp, step by step
        return torch.cat([x, -x, torch.zeros_like(x)], -1) / 3

    assert c.term(logits(ramp), logits(copy), valid).item() == pytest.approx(0.0, abs=1e-6)
    c._warping = None  # the copy against x's own steps: misaligned
    assert c.term(logits(ramp), logits(copy), valid).item() > 1e-3


def test_the_term_is_zero_below_the_threshold_and_grows_with_disagreement():
    c = Consistency(weight=1.0, threshold=0.9, kind="vector", shift=0.0, noise=0.1)
    unsure = torch.zeros(5, 3)  # max pi = 1/3 < 0.9: nobody teaches
    assert c.term(unsure, torch.randn(5, 3)).item() == 0.0
    sure = torch.tensor([[8.0, 0.0, 0.0]]).repeat(5, 1)
    agree = c.term(sure, sure.clone()).item()
    disagree = c.term(sure, torch.tensor([[0.0, 8.0, 0.0]]).repeat(5, 1)).item()
    assert agree < 0.01 < disagree


def test_gradients_reach_only_the_perturbed_branch():
    c = Consistency(weight=1.0, threshold=0.0, kind="vector", shift=0.0, noise=0.1)
    clean = torch.randn(4, 3, requires_grad=True)
    perturbed = torch.randn(4, 3, requires_grad=True)
    c.term(clean, perturbed).backward()
    assert clean.grad is None and perturbed.grad.abs().sum() > 0


@pytest.mark.parametrize("model", ["semivae", "m2", "classifier"])
def test_every_model_with_heads_reports_the_term(model, tiny, tmp_path):
    extra = {"arch": "conv", "head": "ff"} if model == "classifier" else {}
    path = train(tiny(model=model, consistency=2.0, epochs=1, **extra), out=tmp_path / "r", progress=False)
    row = (path / "metrics.jsonl").read_text().splitlines()[-1]
    assert '"consistency"' in row


def test_on_by_default_only_for_semi_supervised_images_and_series():
    from semivae.models import build_model
    from semivae.models.semivae import SEMI_CONSISTENCY
    from semivae.nn import ArchConfig
    from tests.conftest import model_config, spec

    def weight(mode, shape, kind="image", **kw):
        model = build_model(spec(shape, 3, kind=kind), ArchConfig(hidden=[8], latent_dim=2),
                            model_config(mode=mode, **kw))
        return None if model.consistency is None else model.consistency.weight

    assert weight("semi", (1, 8, 8)) == SEMI_CONSISTENCY["image"] == 10.0
    assert weight("semi", (6, 2), kind="sequence") == SEMI_CONSISTENCY["sequence"] == 10.0
    assert weight("supervised", (1, 8, 8)) is None  # it collapsed the supervised sibling on 100 digits
    assert weight("semi", (5,), kind="vector") is None  # feature vectors: no gain measured
    assert weight("semi", (1, 8, 8), consistency=0.0) is None and weight("semi", (5,), "vector", consistency=2.0) == 2.0


def test_a_rotation_turns_the_image_about_its_centre():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 9, 9)
    x[:, :, 4, 1:8] = 1.0  # a horizontal bar through the centre
    turned = shift_images(x, 0.0, 30.0)
    assert turned.shape == x.shape and not torch.allclose(turned, x, atol=1e-3)
    assert (turned[:, :, 4, 4] > 0.5).all()  # the centre stays on the bar: no shift asked for
    assert torch.allclose(shift_images(x, 0.0, 0.0), x, atol=1e-6)


def test_an_elastic_field_is_smooth_and_moves_pixels_by_the_asked_amount():
    torch.manual_seed(0)
    field = elastic_field(32, 28, 28, 1.5, "cpu", torch.float32) * 14  # (B, H, W, 2) in pixels
    assert field.shape == (32, 28, 28, 2)
    per_image = field.std(dim=(1, 2))  # (B, 2)
    assert torch.allclose(per_image, torch.full_like(per_image, 1.5), atol=0.05)
    step = (field[:, 1:] - field[:, :-1]).abs().mean()  # neighbours move together: a smooth field
    assert step < 0.3 * field.abs().mean()
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    bent = shift_images(x, 0.0, 0.0, 1.5)
    assert bent.shape == x.shape and not torch.allclose(bent, x, atol=1e-2)
    assert (bent.sum((1, 2, 3)) - 64).abs().max() < 32  # deformed (areas stretch), not wiped out


def test_a_flip_mirrors_some_images_and_leaves_the_rest():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 6, 6)
    x[:, :, :, 0] = 1.0  # a bar on the left edge
    out = shift_images(x, 0.0, 0.0, 0.0, flip=True)
    mirrored = torch.allclose(out[:, 0, :, 5], torch.ones(64, 6), atol=1e-5)
    left = (out[:, 0, :, 0] > 0.99).all(-1)
    right = (out[:, 0, :, 5] > 0.99).all(-1)
    assert bool(mirrored) is False and left.any() and right.any() and not (left & right).any()
    assert int(left.sum() + right.sum()) == 64


def test_cutout_blanks_one_square_per_image_and_nothing_else():
    torch.manual_seed(0)
    x = torch.rand(256, 1, 28, 28) + 1.0  # no pixel is 0 before
    out = erase_squares(x, 0.25)  # 7 x 7 squares, clipped where they overhang the border
    blank = out == 0  # (B, 1, H, W)
    per_image = blank.sum((1, 2, 3))
    assert per_image.max() == 49 and per_image.min() >= 16 and (per_image == 49).float().mean() > 0.5
    rows, cols = blank.any(-1)[:, 0], blank.any(-2)[:, 0]  # (B, H), (B, W): one run of rows and of columns
    assert torch.equal(per_image, rows.sum(-1) * cols.sum(-1))  # a rectangle, not scattered pixels
    assert torch.equal(out[~blank], x[~blank])  # the rest untouched
    hook = Consistency(weight=1.0, threshold=0.5, kind="image", shift=0.0, noise=0.0, erase=0.25)
    assert ((hook.perturb(x) == 0).sum((1, 2, 3)) > 0).all()  # the hook's perturbation cuts out


def test_a_gain_scales_each_image_by_one_factor_within_its_range_and_keeps_black_black():
    torch.manual_seed(0)
    x = torch.rand(512, 1, 8, 8) * 0.5  # no pixel above 0.5: a factor <= 1.3 clips none
    x[:, :, 0] = 0.0  # a black row
    out = scale_intensity(x, 0.3)
    factor = out[:, :, 1:].flatten(1) / x[:, :, 1:].flatten(1)  # (B, P): one value per image
    assert torch.allclose(factor, factor[:, :1].expand_as(factor), atol=1e-5)
    assert factor.min() >= 0.7 - 1e-6 and factor.max() <= 1.3 + 1e-6 and factor.std() > 0.1  # spread over the range
    assert (out[:, :, 0] == 0).all() and (scale_intensity(torch.ones(64, 1, 4, 4), 0.5) <= 1.0).all()
    hook = Consistency(weight=1.0, threshold=0.5, kind="image", shift=0.0, noise=0.0, gain=0.3)
    assert not torch.allclose(hook.perturb(x), x, atol=1e-3)  # the hook's perturbation scales


def test_labelled_points_teach_their_label_when_asked():
    with_labels = Consistency(weight=1.0, threshold=0.99, kind="vector", shift=0.0, noise=0.1, labels=True)
    unsure = torch.zeros(3, 4)  # pi is unsure everywhere: only known labels teach
    toward_label = torch.tensor([[0.0, 9.0, 0.0, 0.0]]).repeat(3, 1)
    labels = torch.tensor([1, -1, -1])
    hit = with_labels.term(unsure, toward_label, labels=labels).item()
    miss = with_labels.term(unsure, toward_label, labels=torch.tensor([2, -1, -1])).item()
    assert hit < 0.01 < miss  # the label, not pi's guess, is the target
    assert with_labels.term(unsure, toward_label, labels=torch.tensor([-1, -1, -1])).item() == 0.0
    plain = Consistency(weight=1.0, threshold=0.99, kind="vector", shift=0.0, noise=0.1)
    assert plain.term(unsure, toward_label, labels=labels).item() == 0.0  # off by default
    steps = with_labels.term(unsure[:, None].repeat(1, 5, 1), toward_label[:, None].repeat(1, 5, 1), labels=labels)
    assert steps.item() < 0.01  # per-step logits (B, T, K) take the point's label at every step


def test_the_options_reach_the_hook_and_a_model_trains_with_them(tiny, tmp_path):
    from semivae.models import build_model
    from semivae.nn import ArchConfig
    from tests.conftest import model_config, spec

    model = build_model(spec((1, 8, 8), 3), ArchConfig(hidden=[8], latent_dim=2),
                        model_config(augment_elastic=1.0, augment_flip=True, consistency_labels=True,
                                     augment_erase=0.3, consistency_align=True, consistency_mix=0.5,
                                     consistency_temperature=0.0, augment_gain=0.2, augment_adversarial=0.5,
                                     augment_warp=0.1))
    c = model.consistency
    assert (c.elastic, c.flip, c.labels, c.erase, c.gain, c.adversarial, c.warp) == (1.0, True, True, 0.3, 0.2, 0.5, 0.1)
    assert (c.align, c.mix, c.temperature) == (True, 0.5, 0.0) and model.consistency_align_0.shape == (2, 3)
    default = build_model(spec((1, 8, 8), 3), ArchConfig(hidden=[8], latent_dim=2), model_config()).consistency
    assert (default.elastic, default.flip, default.labels, default.erase, default.gain, default.adversarial) == \
        (0.0, False, False, 0.0, 0.0, 0.0)
    assert (default.align, default.mix, default.temperature) == (False, 0.0, 0.4)
    cfg = tiny(epochs=1, augment_elastic=1.0, augment_flip=True, consistency_labels=True, augment_erase=0.3,
               augment_adversarial=0.5)
    path = train(cfg, out=tmp_path / "r", progress=False)
    assert '"consistency"' in (path / "metrics.jsonl").read_text().splitlines()[-1]


def test_hard_targets_are_pi_s_most_likely_class():
    hard = Consistency(weight=1.0, threshold=0.5, kind="vector", shift=0.0, noise=0.1, temperature=0.0)
    logits = torch.tensor([[2.0, 0.0, 0.0]]).repeat(4, 1)  # pi(class 0) = 0.79
    to_zero = torch.tensor([[30.0, 0.0, 0.0]]).repeat(4, 1)
    assert hard.term(logits, to_zero).item() < 1e-6  # the target is one-hot, so a sure copy matches it exactly
    soft = Consistency(weight=1.0, threshold=0.5, kind="vector", shift=0.0, noise=0.1)
    assert soft.term(logits, to_zero).item() > 0.01  # UDA's sharpened target keeps some doubt


def test_alignment_pulls_the_targets_towards_the_labels_class_frequencies():
    aligned = Consistency(weight=1.0, threshold=0.0, kind="vector", shift=0.0, noise=0.1, align=True)
    favoured = torch.tensor([[0.6, 0.2, 0.2]]).repeat(6, 1)  # pi leans to class 0 everywhere
    labels = torch.tensor([0, 1, 2, -1, -1, -1])  # the labels seen are balanced
    state = torch.zeros(2, 3)  # not yet seen
    for _ in range(3):
        out = aligned.aligned(favoured, labels, state)
    assert torch.allclose(out, torch.full((6, 3), 1 / 3), atol=1e-5)  # the lean is divided out
    assert torch.allclose(state, torch.stack([favoured[0], torch.full((3,), 1 / 3)]), atol=1e-5)
    aligned.aligned(torch.tensor([[0.2, 0.6, 0.2]]).repeat(6, 1), torch.full((6,), -1), state)
    assert torch.allclose(state[0], 0.99 * favoured[0] + 0.01 * torch.tensor([0.2, 0.6, 0.2]))  # a running mean
    assert torch.allclose(state[1], torch.full((3,), 1 / 3))  # no labels in the batch: the frequencies stay
    logits, copy = torch.tensor([[3.0, 0.0, 0.0]]).repeat(6, 1), torch.zeros(6, 3)
    assert aligned.term(logits, copy, labels=labels, align_state=torch.zeros(2, 3)).item() < 1e-6  # aligned: no lean


def test_mixing_blends_the_inputs_and_the_targets_alike():
    torch.manual_seed(0)
    mixer = Consistency(weight=1.0, threshold=0.0, kind="vector", shift=0.0, noise=0.0, mix=0.75)
    x = torch.eye(4)
    out = mixer.perturb(x)
    partner, lam = mixer._mixing
    assert (lam >= 0.5).all() and torch.allclose(out, lam[:, None] * x + (1 - lam[:, None]) * x[partner])
    logits = torch.eye(4) * 20  # each point sure of its own class
    blended = torch.log(lam[:, None] * torch.eye(4) + (1 - lam[:, None]) * torch.eye(4)[partner] + 1e-9)
    assert mixer.term(logits, blended).item() < 1e-3  # the blended target is what the copy must predict
    assert mixer.term(logits, logits).item() > 0.01 or torch.equal(partner, torch.arange(4))
    plain = Consistency(weight=1.0, threshold=0.0, kind="vector", shift=0.0, noise=0.0)
    assert torch.equal(plain.perturb(x), x) and plain._mixing is None


@pytest.mark.parametrize("h,w", [(28, 28), (8, 8), (5, 9)])
def test_affine_grid_is_pytorchs(h, w):
    theta = torch.randn(6, 2, 3, generator=torch.Generator().manual_seed(h * w))
    expected = torch.nn.functional.affine_grid(theta, [6, 1, h, w], align_corners=False)
    assert torch.allclose(affine_grid(theta, h, w), expected, atol=1e-6)
