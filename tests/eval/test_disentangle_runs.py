"""Factor heads and the disentanglement workflow end to end, on the reduced dSprites generator."""

import json

import pytest

from semivae.cli import main
from semivae.runs import load_run

FAST = ["--dataset", "dsprites-small", "--hidden", "32", "--latent-dim", "4", "--epochs", "1", "--batch-size", "256",
        "--threads", "1", "--quiet", "--val-fraction", "0.02"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dis") / "r"
    assert main(["train", "--labels", "60", "--joint-labels", "--head-input", "z", "--out", str(out), *FAST]) == 0
    return out


def test_factor_heads_supervise_z_without_feeding_the_decoder(run):
    loaded = load_run(run)
    model = loaded.model
    assert [h.name for h in model.heads] == ["shape", "scale", "orientation", "position_x", "position_y"]
    assert not any(h.feeds_decoder for h in model.heads)  # several label columns: none fed by default
    assert model.decoder.net[0].in_features == 4  # the decoder sees z alone
    assert model.pi["shape"].in_features == 4  # --head-input z: the heads read z
    info = json.loads((run / "data.json").read_text())
    assert set(info["n_labelled_per_head"].values()) == {60}  # --joint-labels: the same 60 points for every factor
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"ce/shape", "ce/position_y"} <= set(rows[0])


def test_disentangle_writes_every_metric_and_the_report_shows_them(run, capsys):
    assert main(["disentangle", str(run), "--scale", "0.05", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["headline"]) == {"beta_vae", "factor_vae", "mig", "dci"}
    assert all(0.0 <= v <= 1.0 for v in res["headline"].values())
    assert len(res["dims"]) == 4 and res["factors"][0] == "shape"
    assert (run / "disentanglement.json").is_file()
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "<h2>Disentanglement</h2>" in page and "mig (mig)" in page
    # one metric again at the same seed and scale keeps the others; at another scale it stands alone
    assert main(["disentangle", str(run), "--scale", "0.05", "--metrics", "mig"]) == 0
    kept = json.loads((run / "disentanglement.json").read_text())
    assert set(kept["headline"]) == {"beta_vae", "factor_vae", "mig", "dci"}
    assert kept["headline"]["dci"] == res["headline"]["dci"]
    assert main(["disentangle", str(run), "--scale", "0.06", "--metrics", "mig"]) == 0
    assert set(json.loads((run / "disentanglement.json").read_text())["headline"]) == {"mig"}


def test_bad_disentangle_input_is_one_line(run, tmp_path, capsys):
    for argv, needle in ((["disentangle", str(run), "--metrics", "sap"], "unknown metric"),
                         (["disentangle", str(run), "--scale", "0"], "--scale")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and needle in err and "\n" not in err
    digits = tmp_path / "digits"
    assert main(["train", "--hidden", "16", "--epochs", "1", "--quiet", "--out", str(digits)]) == 0
    assert main(["disentangle", str(digits)]) == 2
    assert "at least two factors" in capsys.readouterr().err
