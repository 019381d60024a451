from semivae.cli import main
from semivae.train.speed import bench_model, mnist_like_batch, speed_benchmark, training_flops_per_sample


def test_flops_per_sample_of_the_dense_paper_model():
    model, _ = bench_model("semivae", "cpu")
    enc = 784 * 1024 + 1024 * 1024
    heads = 1024 * (2 + 2 + 10)
    dec = 12 * 1024 + 1024 * 1024 + 1024 * 784
    # 6 FLOPs per weight (forward, weight and input gradients), 4 for the first layer
    assert training_flops_per_sample(model, mnist_like_batch(8, "cpu")) == 6 * (enc + heads + dec) - 2 * 784 * 1024


def test_m2_flops_count_the_enumeration_over_classes():
    model, _ = bench_model("m2", "cpu")
    dec = 60 * 500 + 500 * 784  # decoder [z, y] -> 500 -> 784, run once per class
    assert training_flops_per_sample(model, mnist_like_batch(8, "cpu")) > 10 * 6 * dec


def test_speed_benchmark_reports_a_ratio(capsys):
    res = speed_benchmark(batch_size=16, steps=2, precision="fp32", device="cpu", compile="no")
    r = res["results"]["fp32 eager"]
    assert r["matmul_gflops"] > 0 and r["samples_per_s"] > 0
    assert abs(r["ratio_to_bound"] - r["samples_per_s"] / r["bound_samples_per_s"]) < 1e-9
    assert main(["bench", "speed", "--batch-size", "8", "--steps", "1", "--precision", "fp32", "--compile", "no",
                 "--model", "m2"]) == 0
    assert "m2 (its defaults)" in capsys.readouterr().out
