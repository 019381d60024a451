"""The contract restructuring changed no number.

``fixtures/invariant.json`` holds the metrics rows and test metrics of short runs of every
model and mode, recorded by ``fixtures/make_invariant.py`` on the code before the
restructuring (commit 9707ba1); the same options must give the same numbers today. The
full-length check (30 epochs, 100 labels, every model; identical rows) is in docs/models.md.
The runs use PyTorch's own dropout and per-tensor Adam kernels, as the recording did: semivae's
faster CPU kernels (nn/dropout.py, the fused Adam of train/trainer.py) draw other random masks
and round differently, which moves the numbers as another seed would, not as a change of method.
"""

import json
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
import make_invariant  # noqa: E402

EXPECTED = json.loads((FIXTURES / "invariant.json").read_text())


@pytest.fixture
def reference_kernels(monkeypatch):
    import torch

    from semivae.nn import Dropout
    from semivae.train.trainer import OPTIMIZERS

    monkeypatch.setattr(Dropout, "forward", torch.nn.Dropout.forward)
    monkeypatch.setitem(OPTIMIZERS, "adam",
                        lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_same_options_give_the_same_numbers(name, tmp_path, reference_kernels):
    import semivae

    # recorded before the consistency term existed; it is on by default for semi mode on images now
    options = {**EXPECTED[name]["options"], "consistency": 0.0}
    run = semivae.train(out=tmp_path / "r", progress=False, **options)
    rows = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]
    expected = EXPECTED[name]["rows"]
    assert [list(r) for r in rows] == [list(r) for r in expected]  # the same columns, in the same order
    for got, want in zip(rows, expected):
        for k, v in want.items():
            assert got[k] == (pytest.approx(v, rel=1e-4, abs=1e-6) if isinstance(v, float) else v), (k, got[k], v)
    res = semivae.evaluate(run)
    for k, v in EXPECTED[name]["evaluate"].items():
        assert res[k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    assert make_invariant.EVAL_KEYS  # the recorder and this test read the same keys
