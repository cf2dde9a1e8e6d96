"""Measure the bias of the gradient-noise estimators: the tables of docs/noise_scale.md.

    python scripts/noise_scale_tables.py        (about a minute on one CPU core)

1. Fixed networks of the ``batch-noise`` preset's architecture (relu, width 128, depth 3,
   sphere data, n_train N = 256) at init and after 100 SGD steps (lr 0.05, B = 32): the exact
   full-data values from the per-example Gram of all N examples, and over 20000 independent
   uniform minibatches per batch size the means of the plug-in ``grad_noise_scale``, the
   unbiased tr Sigma_N and ||G||^2 estimates, their ratio of means and the mean and median of
   the per-minibatch ratio.
2. The paired batch-noise test at the preset's settings after 100 steps, 16 seeds: the
   minibatch estimates vs the exact full-data values of the same networks at steps 97..100.
3. The same at init over the preset's grid (5 batch sizes x 4 seeds, as
   tests/simulate/test_paired_noise.py): the unpaired OLS slope of ||g_B||^2 on c_B over the
   20 networks against the paired estimate and its relative SE.
4. The small tanh network of tests/simulate/test_noise.py (width 16, depth 2, N = 64, float64;
   4000 minibatches per B, the test's draws): B_simple, the mean of per-minibatch ratios and
   the ratio of means against it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import xarray as xr
from scipy import stats as sps

from gradstats.results.batch_noise import noise_scale_ratio, paired_difference_test
from gradstats.simulate import engine, noise
from gradstats.simulate.data import load_data
from gradstats.simulate.model import build_model
from gradstats.simulate.training import (
    _BatchSampler,
    derive_seeds,
    per_example_loss_fn,
    simulate_point,
)
from gradstats.spec import Architecture, Data, Point, Training

N, DRAWS, CHUNK = 256, 20_000, 2_000
BATCH_SIZES = (8, 16, 32, 64, 128)
ARCH = Architecture(width=128, depth=3, activation="relu", input_dim=64)
LOSS = per_example_loss_fn("mse")


def draw_estimates(gram: torch.Tensor, b: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plug-in noise scale, unbiased tr Sigma_N and ||G||^2 of DRAWS uniform minibatches."""
    plug, t, g = [], [], []
    for _ in range(DRAWS // CHUNK):
        idx = np.stack([rng.choice(N, b, replace=False) for _ in range(CHUNK)])
        sub = gram[idx[:, :, None], idx[:, None, :]]
        plug.append((engine.noise_trace(sub) / engine.mean_grad_sq_norm(sub)).numpy())
        t.append(noise.unbiased_noise_trace(sub, N).numpy())
        g.append(noise.unbiased_grad_sq_norm(sub, N).numpy())
    return np.concatenate(plug), np.concatenate(t), np.concatenate(g)


def fixed_network_table(model, x, y, title: str, seed: int) -> None:
    gram = engine.per_example_gram(engine.model_as_dtype(model, torch.float64), x.double(),
                                   y.double(), LOSS)
    g2 = float(gram.mean())
    trace = float(gram.diagonal().mean()) - g2
    print(f"\n{title}: ||G||^2 = {g2:.4g}, tr Sigma_N = {trace:.4g}, B_simple = {trace / g2:.1f}\n")
    print("| B | plug-in mean | tr Σ_N est. (z) | ‖G‖² est. (z) | ratio of means ± SE "
          "| mean of ratios | median of ratios | ‖G‖² est. ≤ 0 |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(seed)
    for b in BATCH_SIZES:
        plug, t, g = draw_estimates(gram, b, rng)
        se_t, se_g = t.std(ddof=1) / math.sqrt(DRAWS), g.std(ddof=1) / math.sqrt(DRAWS)
        ratio = t.mean() / g.mean()
        se_r = (t - ratio * g).std(ddof=1) / math.sqrt(DRAWS) / g.mean()
        per = t / g
        print(f"| {b} | {plug.mean():.1f} | {t.mean():.3f} ({(t.mean() - trace) / se_t:+.1f}) "
              f"| {g.mean():.4f} ({(g.mean() - g2) / se_g:+.1f}) | {ratio:.1f} ± {se_r:.1f} "
              f"| {per.mean():.1f} | {np.median(per):.1f} | {np.mean(g <= 0):.2f} |")


def paired_table() -> None:
    steps = (0, 97, 98, 99, 100)
    print("\nPaired test after training, 16 seeds: estimate / exact (paired t-test p)\n")
    print("| B | step | tr Σ_N | ‖G‖² | B_simple: ratio of means ± SE | exact "
          "(ratio of means) | plug-in mean |")
    print("|---|---|---|---|---|---|---|")
    for b in (32, 128):
        names = ("full_noise_trace_unbiased", "full_noise_trace", "full_grad_sq_norm_unbiased",
                 "full_grad_sq_norm", "grad_noise_scale")
        rows = {k: [] for k in names}
        for seed in range(16):
            point = Point(arch=ARCH, data=Data(n_train=N), seed=seed,
                          measure=("per_example", "full_batch"),
                          training=Training(batch_size=b, lr=0.05, steps=100, record=steps))
            values = simulate_point(point).values
            for k in names:
                rows[k].append(values[k])
        da = {k: xr.DataArray(np.array(v), dims=("seed", "step"), coords={"step": list(steps)})
              for k, v in rows.items()}
        tr = paired_difference_test(da[names[0]], da[names[1]])
        g2 = paired_difference_test(da[names[2]], da[names[3]])
        ratio = noise_scale_ratio(da[names[0]], da[names[2]])
        for s in steps:
            sel = {"step": s}
            exact = float(da[names[1]].sel(sel).mean() / da[names[3]].sel(sel).mean())
            print(f"| {b} | {s} | {float(tr.estimate.sel(sel)):.2f} / "
                  f"{float(tr.reference.sel(sel)):.2f} (p {float(tr.p_value.sel(sel)):.2f}) | "
                  f"{float(g2.estimate.sel(sel)):.4f} / {float(g2.reference.sel(sel)):.4f} "
                  f"(p {float(g2.p_value.sel(sel)):.2f}) | {float(ratio.b_simple.sel(sel)):.0f} "
                  f"± {float(ratio.se.sel(sel)):.0f} | {exact:.0f} | "
                  f"{float(da[names[4]].sel(sel).mean()):.0f} |")


def unpaired_vs_paired_at_init() -> None:
    names = ("full_noise_trace_unbiased", "full_noise_trace", "full_grad_sq_norm")
    rows = {k: np.zeros((len(BATCH_SIZES), 4)) for k in (*names, "minibatch_sq_norm")}
    for i, b in enumerate(BATCH_SIZES):
        for seed in range(4):
            point = Point(arch=ARCH, data=Data(n_train=N), seed=seed,
                          measure=("per_example", "full_batch"),
                          training=Training(batch_size=b, lr=0.05, steps=0, record=(0,)))
            v = simulate_point(point).values
            for k in names:
                rows[k][i, seed] = v[k][0]
            rows["minibatch_sq_norm"][i, seed] = (v["grad_sq_norm"][0].sum()
                                                  + v["bias_grad_sq_norm"][0].sum())
    da = {k: xr.DataArray(a, dims=("batch_size", "seed"), coords={"batch_size": list(BATCH_SIZES)})
          for k, a in rows.items()}
    c = noise.noise_factor(np.asarray(BATCH_SIZES, float), N)
    fit = sps.linregress(np.repeat(c, 4), rows["minibatch_sq_norm"].ravel())
    mean_trace = float(da[names[1]].mean())
    paired = paired_difference_test(da[names[0]], da[names[1]], dim=("batch_size", "seed"))
    per_b = paired_difference_test(da[names[0]], da[names[1]])
    print(f"\nAt init, 5 batch sizes x 4 seeds: unpaired OLS slope {fit.slope:.1f} ± "
          f"{fit.stderr:.1f} against mean tr Sigma_N {mean_trace:.1f} (relative SE "
          f"{fit.stderr / mean_trace:.2f}); paired: relative SE {float(paired['relative_se']):.2f}, "
          f"p = {float(paired['p_value']):.2f}; per batch size relative SE "
          f"{float(per_b['relative_se'].min()):.2f}..{float(per_b['relative_se'].max()):.2f}; "
          f"||G||^2 over the 20 networks {rows[names[2]].min():.2g}..{rows[names[2]].max():.2g}")


def small_tanh_network() -> None:
    n, d_in, draws = 64, 8, 4000
    arch = Architecture(width=16, depth=2, activation="tanh", sigma_w2=1.5, sigma_b2=0.1,
                        input_dim=d_in)
    model = build_model(arch, 3, dtype=torch.float64)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(n, d_in, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 1, generator=gen, dtype=torch.float64) + 1.0
    weights, biases = engine.slow_per_example_grads(model, x, y, LOSS)
    flat = torch.cat([w.reshape(n, -1) for w in weights] + list(biases), 1).numpy()
    g = flat.mean(0)
    b_true = float(((flat - g) ** 2).sum(1).mean()) / float(g @ g)
    print(f"\nSmall tanh network: B_simple = {b_true:.1f}\n")
    print("| B | mean of ratios (error) | ratio of means ± SE (z) |")
    print("|---|---|---|")
    for b in (4, 16, 48, 96):
        rng = np.random.default_rng(b)
        idx = (np.stack([rng.choice(n, b, replace=False) for _ in range(draws)]) if b <= n
               else rng.integers(0, n, size=(draws, b)))
        rows = torch.as_tensor(flat[idx])
        grams = rows @ rows.transpose(1, 2)
        t = noise.unbiased_noise_trace(grams, n).numpy()
        g2 = noise.unbiased_grad_sq_norm(grams, n).numpy()
        ratio = t.mean() / g2.mean()
        se = (t - ratio * g2).std(ddof=1) / math.sqrt(draws) / g2.mean()
        print(f"| {b} | {(t / g2).mean():.1f} ({(t / g2).mean() / b_true - 1:+.1%}) | "
              f"{ratio:.1f} ± {se:.1f} ({(ratio - b_true) / se:+.1f}) |")


def main() -> None:
    torch.set_num_threads(1)
    point = Point(arch=ARCH, data=Data(n_train=N), training=Training(batch_size=32))
    seeds = derive_seeds(point)
    data = load_data(point.data, "mse", seeds.data)
    x = torch.as_tensor(data.x, dtype=torch.float32)
    y = torch.as_tensor(data.y, dtype=torch.float32)
    model = build_model(ARCH, seeds.init)
    fixed_network_table(model, x, y, "At init", seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    batches = _BatchSampler(N, 32, seeds.batches)
    for _ in range(100):
        i = torch.as_tensor(batches.next())
        optimizer.zero_grad()
        LOSS(model(x[i]), y[i]).mean().backward()
        optimizer.step()
    fixed_network_table(model, x, y, "After 100 SGD steps at B = 32", seed=1)
    paired_table()
    unpaired_vs_paired_at_init()
    small_tanh_network()


if __name__ == "__main__":
    main()
