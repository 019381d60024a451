"""Shared fixtures: tiny configs on the bundled digits data, so the suite stays fast."""

import pytest
import torch

from semivae.config import resolve
from semivae.data import Batch
from semivae.models import Head, ModelSpec, model_entry


def pytest_collection_modifyitems(items):
    """Tests marked ``slow`` (a minute or more each) run first, so that ``pytest -n 2`` starts
    them on both workers at once instead of leaving one of them to finish alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order


def tiny_config(**flat):
    """A small, fast configuration on digits; keyword overrides use the CLI's option names."""
    from semivae.config import nest

    base = {"dataset": "digits", "hidden": [64], "latent_dim": 4, "epochs": 2, "batch_size": 64,
            "labels_per_class": 5, "threads": 1}
    if flat.get("arch") == "conv" and flat.get("decoder_arch") != "dense":
        del base["hidden"]  # a conv run does not read it (and refuses it)
    base.update(flat)
    return resolve(None, nest(base))


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture(scope="session")
def one_draw_runs(tmp_path_factory):
    """Two tiny runs on one label draw (split seed 7, seeds 1 and 2) and one on another (seed 3),
    trained once and only read: an ensemble's members, a student's teachers."""
    from semivae.train import train

    root = tmp_path_factory.mktemp("draw")
    same = [train(tiny_config(split_seed=7, seed=s, epochs=2), out=root / f"s{s}", progress=False) for s in (1, 2)]
    other = train(tiny_config(seed=3, epochs=2), out=root / "other", progress=False)
    return same, other


def spec(shape, n_classes, likelihood="bernoulli", n_targets=0, kind=None):
    """A ModelSpec with one head of ``n_classes`` classes (fed to the decoder)."""
    heads = (Head("label", tuple(str(k) for k in range(n_classes))),) if n_classes else ()
    return ModelSpec(tuple(shape), heads, likelihood, kind or ("image" if len(shape) == 3 else "vector"), n_targets)


def model_config(model="semivae", **kw):
    """The model's own config dataclass, with overrides."""
    return model_entry(model).config(**kw)


def batch(x, y, labelled=None, t=None):
    """A Batch whose labels are ``y`` where ``labelled`` (default: everywhere), else -1."""
    y = y if labelled is None else torch.where(labelled, y, -1)
    return Batch(x, y[:, None], t)
