"""Data with known factors: the dSprites generator, the real files' layouts, grid samplers."""

import numpy as np
import pytest
import torch

from semivae.data import load_dataset
from semivae.data.factor_files import read_norb_matrix
from semivae.data.factors import SPRITE_SETS, GridSampler, RenderedData, bundle_sampler
from semivae.errors import UserError


def test_the_generator_addresses_every_combination_and_draws_on_demand():
    b = load_dataset("dsprites")
    assert len(b.train) + len(b.test) == 3 * 6 * 40 * 32 * 32 == 737_280
    assert isinstance(b.train, RenderedData) and b.train.x.shape == (len(b.train), 5)  # factor indices, not pixels
    assert b.train.shape == (1, 64, 64) and [h.name for h in b.heads] == ["shape", "scale", "orientation",
                                                                          "position_x", "position_y"]
    x = b.train.inputs(torch.arange(8))
    assert x.shape == (8, 1, 64, 64) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(b.train.labels, b.train.x)  # every factor is a label column


def test_each_factor_moves_the_picture_the_way_it_should():
    s = SPRITE_SETS["dsprites"]
    base = torch.tensor([[0, 5, 0, 16, 16]])

    def img(**change):
        f = base.clone()
        for i, k in enumerate(("shape", "scale", "orientation", "x", "y")):
            f[0, i] = change.get(k, f[0, i])
        return s.render(f)[0, 0]

    def centre(im):
        ys, xs = im.nonzero(as_tuple=True)
        return xs.float().mean().item(), ys.float().mean().item()
    assert img(scale=0).sum() < img().sum() / 3  # half the size: about a quarter of the area
    assert centre(img(x=31))[0] > centre(img(x=0))[0] + 30 and centre(img(y=31))[1] > centre(img(y=0))[1] + 30
    assert not torch.equal(img(orientation=5), img())  # a rotated square
    assert torch.equal(img(orientation=10), img())  # a square turned by 90 degrees is itself
    assert len({img(shape=k).sum().item() for k in range(3)}) == 3
    assert torch.equal(s.render(base.repeat(3, 1)), s.render(base).repeat(3, 1, 1, 1))  # deterministic


def test_the_generators_sampler_and_a_complete_grid_of_real_data():
    b = load_dataset("dsprites-small")
    sampler = bundle_sampler(b)
    rng = np.random.default_rng(0)
    f = sampler.sample_factors(5, rng)
    assert f.shape == (5, 5) and sampler.observations(f, rng).shape == (5, 1, 32, 32)
    # the same factors as a finite data set: every combination appears, so it is a grid
    grid = torch.cartesian_prod(torch.arange(2), torch.arange(3))
    data = RenderedData(torch.cat([grid, torch.zeros(6, 3, dtype=torch.long)], 1), grid, render=SPRITE_SETS["dsprites"],
                        sample_shape=(1, 64, 64))
    g = GridSampler(data, grid.numpy(), [0, 1], ("shape", "scale"))
    obs = g.observations(np.array([[1, 2]]), rng)
    assert torch.equal(obs, data.inputs(torch.tensor([5])))
    with pytest.raises(UserError, match="complete grid"):
        GridSampler(data.take(torch.arange(5)), grid[:5].numpy(), [0, 1], ("shape", "scale"))


def test_the_real_dsprites_file_layout(tmp_path):
    classes = np.stack(np.meshgrid(0, np.arange(3), np.arange(2), np.arange(2), np.arange(2), np.arange(2),
                                   indexing="ij"), -1).reshape(-1, 6)
    imgs = np.random.default_rng(0).integers(0, 2, (len(classes), 64, 64)).astype(np.uint8)
    path = tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    np.savez(path, imgs=imgs, latents_classes=classes, latents_values=classes.astype(float))
    b = load_dataset(str(path))
    assert len(b.train) + len(b.test) == 48 and b.train.shape == (1, 64, 64)
    assert [len(h.classes) for h in b.heads] == [3, 2, 2, 2, 2]
    sampler = bundle_sampler(b)
    rng = np.random.default_rng(0)
    f = np.array([[2, 1, 0, 1, 1]])
    row = int(np.flatnonzero((classes[:, 1:] == f).all(1))[0])
    assert torch.equal(sampler.observations(f, rng)[0, 0], torch.from_numpy(imgs[row]).float())


def _norb_file(path, values: np.ndarray):
    magic = 0x1E3D4C55 if values.dtype == np.uint8 else 0x1E3D4C54
    dims = list(values.shape) + [1] * max(0, 3 - values.ndim)
    header = np.array([magic, values.ndim, *dims], dtype="<i4").tobytes()
    path.write_bytes(header + values.astype(values.dtype.newbyteorder("<")).tobytes())


def test_the_small_norb_layout(tmp_path):
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.arange(2), np.arange(2), np.arange(3), np.arange(2), indexing="ij"), -1).reshape(-1, 4)
    for split in ("training", "testing"):
        n = len(grid) * 2  # two instances of every combination
        stem = f"smallnorb-5x46789x9x18x6x2x96x96-{split}"
        _norb_file(tmp_path / f"{stem}-dat.mat", rng.integers(0, 256, (n, 2, 96, 96)).astype(np.uint8))
        _norb_file(tmp_path / f"{stem}-cat.mat", np.repeat(grid[:, 0], 2).astype(np.int32))
        info = np.stack([np.tile([4, 6], len(grid)), np.repeat(grid[:, 1], 2), 2 * np.repeat(grid[:, 2], 2),
                         np.repeat(grid[:, 3], 2)], 1).astype(np.int32)
        _norb_file(tmp_path / f"{stem}-info.mat", info)
    b = load_dataset(str(tmp_path))
    assert b.name == "smallnorb" and b.train.shape == (2, 96, 96) and len(b.train) == 48
    assert [h.name for h in b.heads] == ["category", "elevation", "azimuth", "lighting"]
    assert b.train.labels[:, 2].max() == 2  # azimuth 0, 2, 4 -> 0, 1, 2
    assert bundle_sampler(b).factor_sizes == (2, 2, 3, 2)
    bad = tmp_path / "bad.mat"
    bad.write_bytes(np.array([0x12345678, 1, 3, 1, 1], dtype="<i4").tobytes() + b"abc")
    with pytest.raises(UserError, match="magic"):
        read_norb_matrix(bad)


def test_data_without_complete_factor_labels_has_no_sampler():
    with pytest.raises(UserError, match="at least two factors"):
        bundle_sampler(load_dataset("digits"))  # one label column: not a grid of factors
