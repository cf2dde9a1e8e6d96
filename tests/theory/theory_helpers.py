"""Helpers shared by the theory tests: inputs and Monte Carlo over finite torch networks."""

from __future__ import annotations

import numpy as np


def sphere_inputs(n: int, d: int, seed: int = 0) -> np.ndarray:
    """n inputs on the sphere of radius sqrt(d) (|x|^2/d = 1)."""
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(d)


def mc_outputs(arch, x: np.ndarray, seeds: int, offset: int = 0) -> np.ndarray:
    """Outputs f(x) of `build_model(arch, seed)` networks: (seeds, n, output_dim), float64."""
    import torch

    from gradstats.simulate import build_model

    xt = torch.tensor(x, dtype=torch.float64)
    out = []
    with torch.no_grad():
        for s in range(offset, offset + seeds):
            out.append(build_model(arch, s, dtype=torch.float64)(xt).numpy())
    return np.stack(out)


def mc_statistics(arch, x: np.ndarray, y: np.ndarray, seeds: int, loss: str = "mse"):
    """Per-seed spine statistics of `build_model` networks on minibatch (x, y).

    Returns {name: (seeds, ...) array} for grad_sq_norm, bias_grad_sq_norm, forward_q,
    backward_q, output_mean_sq, weight_sq_norm, batch_loss; conventions of `gradstats.simulate`
    (raw-weight gradients of the mean loss; backward signal of the per-example loss).
    """
    import torch

    from gradstats.simulate import build_model

    xt = torch.tensor(x, dtype=torch.float64)
    yt = torch.tensor(y)
    b = x.shape[0]
    rec: dict[str, list] = {k: [] for k in ("grad_sq_norm", "bias_grad_sq_norm", "forward_q",
                                            "backward_q", "output_mean_sq", "weight_sq_norm",
                                            "batch_loss")}
    for s in range(seeds):
        model = build_model(arch, s, dtype=torch.float64)
        fw = model.forward_all(xt, retain_preact_grad=True)
        f = fw.output
        if loss == "mse":
            per = 0.5 * ((f - yt) ** 2).sum(dim=1)
        else:
            per = torch.nn.functional.cross_entropy(f, yt, reduction="none")
        total = per.mean()
        total.backward()
        n = arch.n_layers
        rec["grad_sq_norm"].append([float((w.grad**2).sum()) for w in model.weights])
        rec["bias_grad_sq_norm"].append(
            [float((bb.grad**2).sum()) for bb in model.biases] if model.biases is not None
            else [np.nan] * n)
        rec["forward_q"].append([float((h.detach() ** 2).mean()) for h in fw.preacts])
        rec["backward_q"].append([float(((b * h.grad) ** 2).mean()) for h in fw.preacts])
        rec["output_mean_sq"].append(float((f.detach() ** 2).mean()))
        rec["weight_sq_norm"].append(
            [float((model.effective_weight(l).detach() ** 2).sum()) for l in range(1, n + 1)])
        rec["batch_loss"].append(float(total.detach()))
    return {k: np.asarray(v, dtype=float) for k, v in rec.items()}


def assert_mc_agrees(samples: np.ndarray, pred, n_se: float = 4.0, rel: float = 0.0,
                     what: str = "") -> None:
    """Seed mean within n_se standard errors (+ rel * |pred|) of the prediction."""
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    pred = np.asarray(pred, dtype=float)
    bad = np.abs(mean - pred) > n_se * se + rel * np.abs(pred)
    assert not np.any(bad), (
        f"{what}: mean {mean} vs prediction {pred} (se {se}, z {(mean - pred) / se})")
