"""Class latents: a Gaussian mixture per class in z, fitted after training, used by generate."""

import numpy as np
import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from semivae.cli import main
from semivae.errors import UserError
from semivae.models import build_model
from semivae.models.latents import ClassLatents, fit_class_latents
from semivae.nn import ArchConfig
from semivae.runs import load_run
from semivae.train import train
from tests.conftest import model_config, spec


def _one_each(mean, chol):  # one Gaussian per class, as files written before mixtures hold them
    return ClassLatents.from_tensors({"mean": mean, "chol": chol})


def test_the_fit_recovers_known_gaussians_and_a_class_without_codes_keeps_the_prior():
    g = torch.Generator().manual_seed(0)
    mean = torch.tensor([[3.0, -1.0], [-2.0, 4.0]])
    chol = torch.tensor([[[1.0, 0.0], [0.5, 0.3]], [[0.2, 0.0], [-0.4, 2.0]]])
    eps = torch.randn(2, 20000, 2, generator=g)
    codes = torch.cat([mean[c] + eps[c] @ chol[c].T for c in range(2)])  # (40000, 2)
    proba = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).repeat_interleave(20000, 0)  # pi sure of every code
    fit = fit_class_latents(codes, proba)  # class 2 has no codes
    assert torch.equal(fit.weight[:, 1:], torch.zeros(3, fit.weight.shape[1] - 1))  # BIC: one Gaussian each
    assert torch.allclose(fit.mean[:2, 0], mean, atol=0.03)
    for c in range(2):
        assert torch.allclose(fit.chol[c, 0] @ fit.chol[c, 0].T, chol[c] @ chol[c].T, atol=0.05)
    assert torch.equal(fit.mean[2, 0], torch.zeros(2)) and torch.equal(fit.chol[2, 0], torch.eye(2))
    z = fit.place(torch.zeros(4, 2), torch.tensor([0, 1, 2, 0]))
    assert torch.allclose(z, torch.stack([fit.mean[0, 0], fit.mean[1, 0], torch.zeros(2), fit.mean[0, 0]]))


def test_a_class_of_two_shapes_gets_two_components_and_samples_them_by_weight():
    g = torch.Generator().manual_seed(0)
    codes = torch.cat([torch.randn(3000, 2, generator=g) * 0.3 + torch.tensor([-4.0, 0.0]),
                       torch.randn(1000, 2, generator=g) * 0.3 + torch.tensor([4.0, 0.0])])  # 3:1
    fit = fit_class_latents(codes, torch.ones(4000, 1))
    assert int((fit.weight[0] > 0).sum()) == 2  # BIC prefers two components to one spanning the gap
    z = fit.place(torch.randn(20000, 2, generator=g), torch.zeros(20000, dtype=torch.long))
    right = z[:, 0] > 0
    assert abs(right.float().mean().item() - 0.25) < 0.01  # each component drawn by its weight
    assert (z[:, 0].abs() > 2).float().mean() > 0.99  # nothing from the empty space between them
    for side, at in ((right, 4.0), (~right, -4.0)):  # and within each, its own Gaussian
        assert abs(z[side, 0].mean().item() - at) < 0.02 and abs(z[side, 0].std().item() - 0.3) < 0.02
    assert torch.allclose(fit.centre[0], codes.mean(0), atol=0.01)


def test_one_component_places_eps_exactly_as_a_single_gaussian():
    mean, chol = torch.tensor([[1.0, 2.0]]), torch.tensor([[[2.0, 0.0], [0.5, 1.0]]])
    eps = torch.randn(50, 2, generator=torch.Generator().manual_seed(3)) * 3
    z = _one_each(mean, chol).place(eps, torch.zeros(50, dtype=torch.long))
    assert torch.equal(z, mean[0] + (chol[0] @ eps[:, :, None])[:, :, 0])


def test_nll_is_each_class_mixture_negative_log_density():
    mean = torch.tensor([[3.0, -1.0], [-2.0, 4.0]])
    chol = torch.tensor([[[1.0, 0.0], [0.5, 0.3]], [[0.2, 0.0], [-0.4, 2.0]]])
    z = torch.randn(7, 2, generator=torch.Generator().manual_seed(1)) * 3
    nll = _one_each(mean, chol).nll(z)  # (7, 2)
    for c in range(2):
        truth = -torch.distributions.MultivariateNormal(mean[c], scale_tril=chol[c]).log_prob(z)
        assert torch.allclose(nll[:, c], truth, atol=1e-4)
    mix = ClassLatents(torch.tensor([[0.3, 0.7]]), mean[None], chol[None])  # both Gaussians, one class
    gauss = [torch.distributions.MultivariateNormal(mean[c], scale_tril=chol[c]) for c in range(2)]
    truth = -torch.log(0.3 * gauss[0].log_prob(z).exp() + 0.7 * gauss[1].log_prob(z).exp())
    assert torch.allclose(mix.nll(z)[:, 0], truth, atol=1e-4)
    # a code at a class's mean is likelier under it than a code far from both
    near_far = _one_each(mean, chol).nll(torch.stack([mean[0], torch.tensor([30.0, 30.0])])).min(-1).values
    assert near_far[0] < near_far[1]


def test_only_confident_codes_shape_a_class_where_there_are_enough():
    codes = torch.cat([torch.zeros(40, 2), torch.full((40, 2), 10.0)])  # 40 sure codes at 0, 40 hesitant at 10
    sure, hesitant = torch.tensor([[1.0, 0.0]]).repeat(40, 1), torch.tensor([[0.6, 0.4]]).repeat(40, 1)
    assert torch.allclose(fit_class_latents(codes, torch.cat([sure, hesitant])).centre[0], torch.zeros(2))
    # too few sure codes (4 D = 8 needed): every code assigned to the class counts
    few = torch.cat([sure[:5], hesitant])
    assert torch.allclose(fit_class_latents(codes[35:], few).centre[0], torch.tensor([400.0 / 45] * 2), atol=1e-4)


def _semivae(mode="semi"):
    cfg = model_config(mode=mode, consistency=0.0)
    return build_model(spec((1, 8, 8), 3), ArchConfig(hidden=[16], latent_dim=2, dropout=0.0), cfg).eval()


def test_generate_places_z_in_the_asked_class_only_with_fitted_latents():
    torch.manual_seed(0)
    m = _semivae()
    eps, c = torch.randn(5, 2), torch.tensor([0, 1, 2, 1, 0])
    assert torch.equal(m.generate(eps, {"label": c}), m.decode(eps, {"label": c}))  # none fitted: z ~ N(0, I)
    m.class_latents = _one_each(torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]]), 0.1 * torch.eye(2).repeat(3, 1, 1))
    z = m.class_latents.place(eps, c)
    assert torch.equal(m.generate(eps, {"label": c}), m.decode(z, {"label": c}))
    assert torch.equal(m.generate(eps), m.decode(eps))  # no class asked: nothing to place


def test_only_the_semi_supervised_model_declares_a_latent_head():
    assert _semivae().latent_head.name == "label"
    assert _semivae("unsupervised").latent_head is None and _semivae("supervised").latent_head is None
    m2 = build_model(spec((1, 8, 8), 3), ArchConfig(hidden=[16], latent_dim=2), model_config("m2"))
    assert m2.latent_head is None  # its q(z|x,y) already keeps the class out of z


def test_training_writes_them_generate_uses_them_and_a_damaged_file_is_one_line(tiny, tmp_path):
    path = train(tiny(epochs=1), out=tmp_path / "r", progress=False)
    run = load_run(path)
    latents = run.model.class_latents
    k, m = latents.weight.shape
    assert k == 10 and latents.mean.shape == (10, m, 4) and latents.chol.shape == (10, m, 4, 4)
    assert torch.allclose(latents.weight.sum(1), torch.ones(10)) and np.isfinite(latents.chol.numpy()).all()
    for flag, name in (([], "a"), (["--prior-z"], "b")):
        assert main(["generate", str(path), "--npz", str(tmp_path / f"{name}.npz"), "--out", str(tmp_path / f"{name}.png"),
                     *flag]) == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert np.array_equal(a["eps"], b["eps"]) and not np.allclose(a["x"], b["x"])  # same draws, placed or not
    assert np.array_equal(b["z"], np.broadcast_to(b["eps"], b["z"].shape))  # --prior-z decodes the draws themselves
    placed = latents.place(torch.from_numpy(a["eps"]), torch.full((len(a["eps"]),), 3))
    assert np.allclose(a["z"][3], placed.numpy())  # the codes row 3 decoded: the draws placed in class 3's mixture
    centre = latents.centre.clone()  # the loaded tensors map the file, which is rewritten in place below
    old = {"mean": centre, "chol": torch.eye(4).repeat(10, 1, 1)}  # a run from before mixtures
    (path / "class_latents.safetensors").write_bytes(safetensors_bytes(old))
    assert torch.equal(load_run(path).model.class_latents.mean[:, 0], centre)
    (path / "class_latents.safetensors").write_bytes(b"broken")
    with pytest.raises(UserError, match="class_latents.safetensors cannot be loaded"):
        load_run(path)
