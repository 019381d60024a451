"""Screening: distil kept runs (a teacher, or an ensemble of them) into a conv classifier.

The student reads the teacher's class probabilities on every training point the teacher read
(labelled or not; its validation carve stays out) and the budget's true labels, through shifts
and flips, and is scored once on the test split. One recipe, fixed before any run:

    SEMIVAE_DATA=../shared/datasets python benchmarks/student.py --teachers RUN [RUN ...] \
        --epochs 10 --seed 0 --out bench-results/student-0.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semivae.eval.ensemble import average, load_members, member_outputs
from semivae.nn.conv import ConvEncoder, ConvOptions
from semivae.objectives.consistency import shift_images
from semivae.runs.run import preprocessing
from semivae.train.trainer import make_average


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teachers", nargs="+", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--flip", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    members = load_members(a.teachers) if len(a.teachers) > 1 else None
    from semivae.runs import as_run
    members = members or [as_run(a.teachers[0])]
    m0 = members[0]
    bundle = m0.dataset()
    shift, scale = preprocessing(m0.data_info)
    keep = np.setdiff1d(np.arange(len(bundle.train)), m0.split.val)
    train = replace(bundle.train.take(torch.from_numpy(keep)), shift=shift, scale=scale)
    test = replace(bundle.test, shift=shift, scale=scale)
    head = m0.spec.heads[0].name
    teacher = torch.from_numpy(average([member_outputs(m, train)["proba"] for m in members])[head]).float()  # (N, K)
    t_test = average([member_outputs(m, test)["proba"] for m in members])[head]
    y_test = test.labels[:, 0].numpy()
    lab = np.searchsorted(keep, m0.split.labelled[0])  # positions of the budget's labels in ``train``
    t_teacher = time.perf_counter() - t0
    print(f"teacher: train agreement with truth {(teacher.argmax(1) == train.labels[:, 0]).float().mean():.4f}, "
          f"test {np.mean(t_test.argmax(1) == y_test):.4f} ({t_teacher:.0f} s)", flush=True)

    torch.manual_seed(a.seed)
    k = teacher.shape[1]
    enc = ConvEncoder(train.shape, ConvOptions([32, 64, 128], [1, 2, 2], 256, dropout=0.25, batch_norm=True))
    net = nn.Sequential(enc, nn.Linear(enc.out_features, k))
    ema = make_average(net, 0.999)  # the library's --ema 0.999
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n, bs, bl = len(train), 128, 16
    for ep in range(a.epochs):
        net.train()
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n - bs + 1, bs):
            idx = perm[i:i + bs]
            li = torch.from_numpy(lab[torch.randint(len(lab), (bl,)).numpy()])
            x = shift_images(torch.cat([train.inputs(idx), train.inputs(li)]), 2.0, flip=a.flip)  # (B+L, C, H, W)
            logits = net(x)
            soft = -(teacher[idx] * F.log_softmax(logits[:bs], 1)).sum(1).mean()
            hard = F.cross_entropy(logits[bs:], train.labels[li, 0])
            loss = soft + hard
            opt.zero_grad()
            loss.backward()
            opt.step()
            ema.update_parameters(net)
            total += loss.item()
        acc, raw = score(ema, test), score(net, test)
        print(f"epoch {ep + 1}: loss {total / (n // bs):.4f} test {np.mean(acc.argmax(1) == y_test):.4f} "
              f"(raw {np.mean(raw.argmax(1) == y_test):.4f}) "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    p = score(ema, test)
    row = {"teachers": a.teachers, "seed": a.seed, "epochs": a.epochs, "flip": a.flip,
           "teacher_test_accuracy": float(np.mean(t_test.argmax(1) == y_test)),
           "student_test_accuracy": float(np.mean(p.argmax(1) == y_test)),
           "student_log_loss": float(-np.mean(np.log(np.clip(p[np.arange(len(y_test)), y_test], 1e-12, 1)))),
           "seconds": time.perf_counter() - t0}
    print(json.dumps(row), flush=True)
    with open(a.out, "w") as f:
        json.dump(row, f, indent=1)


@torch.no_grad()
def score(net, data) -> np.ndarray:
    net.eval()
    out = [F.softmax(net(data.inputs(torch.arange(i, min(i + 1000, len(data))))), 1) for i in range(0, len(data), 1000)]
    return torch.cat(out).numpy()


if __name__ == "__main__":
    main()
