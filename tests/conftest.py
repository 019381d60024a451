"""Shared fixtures: tiny configs on the bundled digits data, so the suite stays fast."""

import pytest

from semivae.config import resolve


def tiny_config(**flat):
    """A small, fast configuration on digits; keyword overrides use the CLI's option names."""
    from semivae.config import nest

    base = {"dataset": "digits", "hidden": [64], "latent_dim": 4, "epochs": 2, "batch_size": 64,
            "labels_per_class": 5, "threads": 1}
    base.update(flat)
    return resolve(None, nest(base))


@pytest.fixture
def tiny():
    return tiny_config
