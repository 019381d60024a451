"""``semivae suggest RUN --n 50``: which unlabelled points to label next.

Candidates are the run's training points whose label it did not see (validation points
aside). Each gets an uncertainty from its first head, u = 1 - (p_1 - p_2), one minus the
margin between its two most probable classes (the margin criterion of active learning: 0 when
sure, 1 on a tie). The batch is then picked for uncertainty *and* diversity, so it is not
fifty copies of one confusion: among the ``pool`` most uncertain candidates, greedily take
the point maximising

    u_i * d_i / max_j d_j,    d_i = distance in the latent space (means of q(z|x), each
                              dimension standardised) to the nearest point labelled or picked

(a weighted farthest-first traversal, Sener & Savarese 2018's core-set idea weighted by
uncertainty).

Before any label (a run without a class layer, or ``--strategy typical``) there is nothing to be
uncertain with, and with few labels uncertainty picks outliers; the typical points are picked
instead (TypiClust, Hacohen et al. 2022, "Active learning on a budget"): k-means with L + n
clusters on the standardised latent means of every training point (L: the labels the run has),
then n times, from the largest cluster among those holding the fewest labelled or picked points,
the point of highest typicality

    t_i = 1 / (mean distance to its k nearest points in the cluster),   k = min(20, |cluster| / 2)

(clusters of fewer than 5 points are skipped), so a small budget covers the dense regions of
the data, each with one representative point. Rows are indices into the training split; ids are the
data's own names where it has them, else the row numbers in the file (kept where a test split is carved);
``--label-ids FILE`` on the next ``semivae train`` reads the file back.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..models import model_device
from ..runs import Run, as_run
from ..runs.run import preprocessing
from .embed import latent
from .evaluation import row_ids
from .outputs import apply_temperature, model_outputs


def margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 - (p_1 - p_2) per row: (N, K) -> (N,) in [0, 1]."""
    top = np.sort(proba, 1)[:, ::-1]
    return 1.0 - (top[:, 0] - top[:, 1])


def diverse_batch(u: np.ndarray, z: np.ndarray, n: int, anchors: np.ndarray | None = None) -> np.ndarray:
    """Indices of ``n`` rows of ``z`` (M, D) picked greedily by u_i * d_i / max d (see the
    module docstring); ``anchors`` (L, D) are points already labelled. Deterministic."""
    z = np.asarray(z, dtype=np.float64)
    d = np.full(len(z), np.inf)
    if anchors is not None and len(anchors):
        for a in np.asarray(anchors, dtype=np.float64):
            d = np.minimum(d, np.linalg.norm(z - a, axis=1))
    picked: list[int] = []
    for _ in range(min(n, len(z))):
        scale = d[np.isfinite(d)].max() if np.isfinite(d).any() else 1.0
        value = u * np.where(np.isfinite(d), d / max(scale, 1e-12), 1.0)
        value[picked] = -np.inf
        i = int(np.argmax(value))
        picked.append(i)
        d = np.minimum(d, np.linalg.norm(z - z[i], axis=1))
    return np.asarray(picked, dtype=np.int64)


K_TYPICAL, MIN_CLUSTER = 20, 5  # TypiClust's neighbours for typicality and smallest cluster drawn from


def typical_batch(z: np.ndarray, n: int, labelled: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` rows of ``z`` (N, D), none of ``labelled`` (indices of rows already
    labelled), picked as the module docstring's typical points: k-means with len(labelled) + n
    clusters, then the most typical point of the largest least-covered cluster, n times."""
    from sklearn.cluster import KMeans
    from sklearn.neighbors import NearestNeighbors

    z = np.asarray(z, dtype=np.float64)
    k = min(len(labelled) + n, len(z))
    cluster = KMeans(k, n_init=1, random_state=seed).fit_predict(z)  # (N,)
    sizes = np.bincount(cluster, minlength=k)  # (C,)
    covered = np.bincount(cluster[labelled], minlength=k)  # (C,) labelled or picked points
    taken = np.zeros(len(z), dtype=bool)
    taken[labelled] = True
    picked: list[int] = []
    for _ in range(n):
        left = sizes - covered  # (C,) points not yet labelled or picked
        open_ = np.flatnonzero((left > 0) & (sizes >= MIN_CLUSTER))
        open_ = open_ if len(open_) else np.flatnonzero(left > 0)  # only small clusters left
        if not len(open_):
            break
        least = open_[covered[open_] == covered[open_].min()]
        c = least[np.argmax(sizes[least])]  # the largest of the least covered
        members = np.flatnonzero((cluster == c) & ~taken)  # (M,)
        nn = min(K_TYPICAL, sizes[c] // 2)
        i = int(members[0])
        if nn >= 1:  # typicality over the whole cluster, the point itself left out
            dist, _ = NearestNeighbors(n_neighbors=nn + 1).fit(z[cluster == c]).kneighbors(z[members])  # (M, nn + 1)
            i = int(members[np.argmax(1.0 / (dist[:, 1:].mean(1) + 1e-12))])
        picked.append(i)
        taken[i] = True
        covered[c] += 1
    return np.asarray(picked, dtype=np.int64)


STRATEGIES = ("auto", "margin", "typical")


def labelled_rows(run: Run) -> np.ndarray:
    """The training rows whose labels the run learned from: none for a run without a class layer
    (a VAE's budget lists the data's labels, but it never read them)."""
    return run.split.pool if run.model.heads else np.zeros(0, dtype=np.int64)


def suggest(run: Run | str | Path, n: int = 50, *, pool: int | None = None, strategy: str = "auto",
            data_dir: str | None = None, device: str | None = None) -> list[dict]:
    """The ``n`` training points to label next, best first: {rank, row, id, predicted,
    uncertainty} (the last two empty for a run without a class layer). ``strategy``: margin
    (uncertain and diverse; ``pool``, default max(10 n, 1000), bounds the most uncertain
    candidates the batch is drawn from), typical (representative points, for a first budget), or
    auto: typical for a run without a class layer, margin otherwise."""
    run = as_run(run, device)
    if n < 1:
        raise UserError(f"--n {n} must be >= 1; ask for at least one point")
    if pool is not None and pool < n:
        raise UserError(f"--pool {pool} must be >= --n {n}: the batch is drawn from the pool's most uncertain points")
    if strategy not in STRATEGIES:
        raise UserError(f"unknown --strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy == "margin" and not run.model.heads:
        raise UserError(f"run {run.path} has no class layer to be uncertain with; use --strategy typical, or train "
                        "with --mode semi or supervised")
    shift, scale = preprocessing(run.data_info)
    full = replace(run.dataset(data_dir).train, shift=shift, scale=scale)
    labelled = labelled_rows(run)
    seen = np.union1d(np.union1d(labelled, run.split.val_pool), run.split.val)
    candidates = np.setdiff1d(np.arange(len(full)), seen)
    if not len(candidates):
        raise UserError(f"run {run.path} saw every training label; there is nothing left to suggest")
    if strategy == "typical" or not run.model.heads:
        return _typical(run, full, candidates, labelled, n)
    data = full.take(torch.from_numpy(candidates))
    head = run.model.heads[0]
    p = _proba(run, data)
    u = margin_uncertainty(p)
    size = max(n, pool if pool is not None else max(10 * n, 1000))
    top = np.argsort(-u, kind="stable")[:size]  # the most uncertain candidates
    z, _ = latent(run, data.take(torch.from_numpy(top)))
    z = z.reshape(len(z), -1)
    mean, std = z.mean(0), z.std(0) + 1e-8
    anchors = None
    if len(labelled):
        anchors = (latent(run, full.take(torch.from_numpy(labelled)))[0].reshape(len(labelled), -1) - mean) / std
    picked = top[diverse_batch(u[top], (z - mean) / std, n, anchors)]
    ids = row_ids(full)
    return [{"rank": r + 1, "row": int(candidates[i]), "id": ids[candidates[i]],
             "predicted": head.classes[int(p[i].argmax())], "uncertainty": float(u[i])} for r, i in enumerate(picked)]


def _proba(run: Run, data) -> np.ndarray:
    """The run's first head's probabilities on ``data``, through its temperature: (N, K)."""
    head = run.model.heads[0]
    p = model_outputs(run.model, data, device=model_device(run.model), elbo=False)["proba"][head.name]
    return apply_temperature(p / p.sum(1, keepdims=True), run.temperatures.get(head.name, 1.0))


def _typical(run: Run, full, candidates: np.ndarray, labelled: np.ndarray, n: int) -> list[dict]:
    """``suggest``'s rows by ``typical_batch`` over the candidates and the ``labelled`` points."""
    rows = np.concatenate([candidates, labelled])  # the labelled points last
    z = latent(run, full.take(torch.from_numpy(rows)))[0].reshape(len(rows), -1)  # (N, D) latent means
    z = (z - z.mean(0)) / (z.std(0) + 1e-8)
    picked = typical_batch(z, n, np.arange(len(candidates), len(rows)), seed=run.config.train.seed)
    ids, head = row_ids(full), run.model.heads[0] if run.model.heads else None
    p = None if head is None else _proba(run, full.take(torch.from_numpy(rows[picked])))  # (n, K)
    return [{"rank": r + 1, "row": int(rows[i]), "id": ids[rows[i]],
             "predicted": "" if p is None else head.classes[int(p[r].argmax())],
             "uncertainty": None if p is None else float(margin_uncertainty(p[r:r + 1])[0])}
            for r, i in enumerate(picked)]


def suggestions_csv(run: Run, rows: list[dict], with_labelled: bool = False) -> str:
    """CSV text of ``suggest``'s rows; ``with_labelled`` lists the run's labelled points first
    (rank empty: without a budget, every labelled point of the data, validation's too), so the file
    feeds the next ``--label-ids`` as it stands."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "row", "id", "predicted", "uncertainty"])
    if with_labelled:
        train = run.dataset().train  # read once: Run caches its dataset
        ids = row_ids(train)
        named = np.union1d(labelled_rows(run), run.split.val_pool)
        if run.model.heads and run.config.data.every_label:  # (a VAE read no label: it lists none)
            named = np.union1d(named, np.flatnonzero((train.labels >= 0).any(1).numpy()))  # those validation hid too
        for r in named:
            w.writerow(["", int(r), ids[int(r)], "", ""])
    for s in rows:
        u = "" if s["uncertainty"] is None else f"{s['uncertainty']:.6g}"
        w.writerow([s["rank"], s["row"], s["id"], s["predicted"], u])
    return buf.getvalue()
