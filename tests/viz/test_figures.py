"""Each figure on a tiny trained model: a non-empty PNG of the expected pixel size."""

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

from semivae.runs import load_run
from semivae.train import train
from semivae.viz import (DPI, confusion_figure, generate_figure, generation_grid, latent_scatter_figure,
                         learning_curves_figure, rank_dims, reconstructions_figure, run_figures, save_png,
                         traverse_figure)
from semivae.viz.figures import figure_data
from semivae.viz.plots import reliability_figure


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    from tests.conftest import tiny_config

    return load_run(train(tiny_config(epochs=2), out=tmp_path_factory.mktemp("img") / "r", progress=False))


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    from sklearn.datasets import load_iris

    from tests.conftest import tiny_config

    d = load_iris()
    path = tmp_path_factory.mktemp("tab") / "iris.npz"
    np.savez(path, x=d.data.astype(np.float32), y=d.target)
    return load_run(train(tiny_config(dataset=str(path), epochs=2, labels_per_class=3), out=path.parent / "r",
                          progress=False))


def _check_png(fig, path):
    save_png(fig, path)
    w, h = fig.get_size_inches() * DPI
    with Image.open(path) as im:
        assert im.size == (round(w), round(h))
        assert np.asarray(im.convert("L")).std() > 0  # not a blank canvas


@pytest.mark.parametrize("which", ["image_run", "tabular_run"])
def test_every_figure_writes_a_png_of_its_size(which, request, tmp_path):
    run = request.getfixturevalue(which)
    data, x, y = figure_data(run)
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    figs = {
        "generate": generate_figure(run.model, n=6, data=data),
        "one_class": generate_figure(run.model, n=20, only_class=1, data=data),
        "traverse": traverse_figure(run.model, x, steps=5, data=data),
        "reconstructions": reconstructions_figure(run.model, x[:8], data=data),
        "latent": latent_scatter_figure(run.model, x, y, run.classes),
        "curves": learning_curves_figure(rows),
        "confusion": confusion_figure(np.eye(len(run.classes), dtype=int) * 3, run.classes),
        "reliability": reliability_figure({"count": [0, 2, 5, 9], "accuracy": [None, 0.5, 0.6, 0.9]}, ece=0.1),
    }
    for name, fig in figs.items():
        _check_png(fig, tmp_path / f"{name}.png")
    assert [name for name, _ in run_figures(run)] == ["learning_curves", "confusion", "reliability", "generate",
                                                       "traverse", "reconstructions", "latent"]


def test_generation_grid_keeps_z_fixed_down_a_column(image_run):
    model = image_run.model
    grid, z, _ = generation_grid(model, 4, [2, 5], seed=3)
    with torch.no_grad():
        for j in range(4):
            for row, k in enumerate([2, 5]):
                torch.testing.assert_close(grid[row, j], model.generate(z[j:j + 1], {"label": torch.tensor([k])})[0])
    assert not torch.allclose(grid[0], grid[1])  # the class changes the picture, z stays


def test_traversal_ranks_dimensions_by_kl(image_run):
    model = copy.deepcopy(image_run.model)
    _, x, _ = figure_data(image_run)
    with torch.no_grad():  # silence dimensions 0 and 2: q(z_d|x) = N(0, 1), KL 0
        for d in (0, 2):
            for head in (model.mu, model.logvar):
                head.weight[d] = 0.0
                head.bias[d] = 0.0
    order, kl = rank_dims(model, x)
    assert set(order[-2:]) == {0, 2} and kl[0] == pytest.approx(0, abs=1e-6)
    assert all(kl[a] >= kl[b] for a, b in zip(order, order[1:]))
