"""The report as a person sees it: rendered by headless Chromium, headings present, every
image decoded with a non-zero size. CLI figure commands and ``train --report``."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from semivae.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "r"
    assert main(["train", "--epochs", "2", "--hidden", "32", "--latent-dim", "3", "--labels-per-class", "5",
                 "--threads", "1", "--quiet", "--report", "--tensorboard", "--out", str(out)]) == 0
    return out


def test_train_report_writes_a_self_contained_page_and_tensorboard_events(run):
    page = (run / "report.html").read_text()
    assert "<h2>Generation</h2>" in page and "data:image/png;base64," in page
    assert 'src="http' not in page and "<script" not in page  # stands alone, nothing to fetch
    assert sorted(p.name for p in (run / "figures").iterdir()) == [
        "confusion.png", "generate.png", "latent.png", "learning_curves.png", "reconstructions.png", "reliability.png",
        "traverse.png"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
def test_report_renders_in_headless_chromium(run):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.goto((run / "report.html").resolve().as_uri())
        page.wait_for_load_state("load")
        headings = page.locator("h2").all_inner_texts()
        images = page.evaluate("[...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
        browser.close()
    assert headings[:2] == ["Summary", "Test metrics"] and headings[-1] == "Configuration"
    for h in ("Learning curves", "Confusion matrix (test split)", "Reliability diagram (test split)",
              "Generation", "Latent traversals", "Reconstructions", "Latent space"):
        assert h in headings
    assert len(images) == 7
    for alt, complete, w, h in images:
        assert complete and w > 0 and h > 0, alt


def test_generate_and_traverse_commands(run, tmp_path, capsys):
    assert main(["generate", str(run), "--class", "3", "--n", "8", "--out", str(tmp_path / "g.png"),
                 "--npz", str(tmp_path / "g.npz")]) == 0
    arr = np.load(tmp_path / "g.npz")
    assert arr["x"].shape == (1, 8, 1, 8, 8) and arr["z"].shape == (1, 8, 3) and arr["eps"].shape == (8, 3)
    assert list(arr["classes"]) == ["3"]
    assert (tmp_path / "g.png").stat().st_size > 0
    assert main(["traverse", str(run), "--dims", "2", "--steps", "5"]) == 0
    assert (run / "figures" / "traverse.png").is_file()
    for argv, needle in ((["generate", str(run), "--class", "cat"], "--class cat"),
                         (["generate", str(run), "--out", str(tmp_path / "g.jpg")], ".png"),
                         (["traverse", str(run), "--index", "100000"], "--index"),
                         (["report", str(tmp_path / "nowhere")], "is not a run directory")):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and needle in err and "\n" not in err


def test_supervised_run_report_has_no_decoder_figures(tmp_path):
    out = tmp_path / "sup"
    assert main(["train", "--mode", "supervised", "--epochs", "1", "--hidden", "16", "--labels-per-class", "5",
                 "--quiet", "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Confusion matrix" in page and "<h2>Generation</h2>" not in page
    assert main(["generate", str(out)]) == 2
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    assert not (out / "figures" / "generate.png").exists() and Path(out / "report.html").is_file()
