"""Why the digits' finite-width excess is larger than the sphere's: the readout's K outputs.

One hidden layer (depth 1), relu, ntk parameterization, sigma_w2 = 2, sigma_b2 = 0.05, the
first 16 standardized digits, one-hot mse targets over K = 10 outputs (the setting of
scripts/sweeps/validity-digits-mlp.toml). For the layer-1 weight gradient of the batch loss,

    ||g_1||^2 = (sigma_w^2 / d) (1/B^2) sum_ij (x_i . x_j) delta_i . delta_j,
    delta_i = D_i (sigma_w / sqrt(n)) W_2^T r_i,  r_i = f_i - y_i,

the infinite-width prediction factorizes E[r_i . r_j] E[tr D_i D_j]. Given layer 1 the
expectation over the readout (W_2, b_2) is exact by Wick's theorem:

    E[r_i^T W_2 M W_2^T r_j] = (K^2 + K) u_i^T M u_j + K tr(M) u_i . u_j + tr(M) (K sb2 + y_i . y_j)

(u_i = sigma_w phi_i / sqrt(n), M = D_i D_j), whose first term is missing from the
factorized form: a relative excess of about (K + 1) / (n P(h_i > 0, h_j > 0)) ~ 2 (K + 1) / n,
i.e. 22/n for K = 10 against 4/n for the validity preset's scalar output. Prints the Monte
Carlo ratio measured / predicted (over all weights), the exact-over-readout formula averaged
over layer-1 draws, and n (ratio - 1) per width. Usage: python scripts/readout_wick_excess.py
"""

import numpy as np
from sklearn.datasets import load_digits

B, K, SW2, SB2 = 16, 10, 2.0, 0.05


def batch() -> tuple[np.ndarray, np.ndarray]:
    """The first B standardized digits (B, 64) and their one-hot targets (B, K)."""
    x, labels = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    return x[:B], np.eye(K)[labels[:B]]


def layer1(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Pre-activations (B, n) of a fresh first layer."""
    w1, b1 = rng.standard_normal((n, x.shape[1])), rng.standard_normal(n)
    return np.sqrt(SW2 / x.shape[1]) * x @ w1.T + np.sqrt(SB2) * b1


def infinite_width(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> float:
    """The factorized prediction, layer-1 averages from a 400,000-unit layer."""
    h = layer1(x, 400_000, rng)
    phi, d = np.maximum(h, 0), (h > 0).astype(float)
    e_rr = K * (SW2 * phi @ phi.T / h.shape[1] + SB2) + y @ y.T
    p_both = d @ d.T / h.shape[1]
    return float(((x @ x.T) * e_rr * SW2 * p_both).sum() / B**2)


def finite_width(x: np.ndarray, y: np.ndarray, n: int, seeds: int, rng: np.random.Generator
                 ) -> tuple[float, float, float]:
    """(Monte Carlo mean, its standard error, mean of the exact-over-readout formula)."""
    values, exact = [], []
    gram = x @ x.T
    for _ in range(seeds):
        h = layer1(x, n, rng)
        phi, d = np.maximum(h, 0), (h > 0).astype(float)
        w2, b2 = rng.standard_normal((K, n)), rng.standard_normal(K)
        r = np.sqrt(SW2 / n) * phi @ w2.T + np.sqrt(SB2) * b2 - y
        delta = d * (np.sqrt(SW2 / n) * r @ w2)
        values.append((gram * (delta @ delta.T)).sum() / B**2)
        u = np.sqrt(SW2 / n) * phi
        tr_m = d @ d.T
        u_m_u = np.einsum("ia,ja,ia,ja->ij", u, u, d, d)
        e = (K * K + K) * u_m_u + K * tr_m * (u @ u.T) + tr_m * (K * SB2 + y @ y.T)
        exact.append((gram * e * SW2 / n).sum() / B**2)
    return float(np.mean(values)), float(np.std(values) / np.sqrt(seeds)), float(np.mean(exact))


def main() -> None:
    rng = np.random.default_rng(0)
    x, y = batch()
    pred = infinite_width(x, y, rng)
    print("width | measured / predicted | exact over readout / predicted | width x (ratio - 1)")
    for n in (32, 64, 128, 256, 512):
        m, se, ex = finite_width(x, y, n, 4000 if n <= 128 else 1500, rng)
        print(f"{n} | {m / pred:.3f} +- {se / pred:.3f} | {ex / pred:.3f} | {n * (m / pred - 1):.1f}")


if __name__ == "__main__":
    main()
