"""Tests of gradstats.simulate.distributions against closed forms, slow obvious versions,
the powerlaw package, scipy samplers with known parameters and the simulator at init."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from gradstats.simulate import distributions as D
from gradstats.simulate.model import build_model
from gradstats.spec import Architecture


def pareto(rng: np.random.Generator, n: int, alpha: float, xmin: float = 1.0) -> np.ndarray:
    """Density exponent alpha: x = xmin U^(-1/(alpha-1))."""
    return xmin * (1.0 - rng.random(n)) ** (-1.0 / (alpha - 1.0))


# --- shape statistics ------------------------------------------------------------------------


def test_shape_stats_gaussian_and_laplace_moments():
    rng = np.random.default_rng(0)
    n = 200_000
    g = D.shape_stats(rng.standard_normal(n))
    # Sampling sd of skewness ~ sqrt(6/n), of Pearson kurtosis ~ sqrt(24/n) for a normal.
    assert abs(g.skewness) < 5 * math.sqrt(6 / n)
    assert abs(g.kurtosis - 3.0) < 5 * math.sqrt(24 / n)
    assert g.normality_p > 1e-3 and g.ks_normal_p > 1e-3
    lap = D.shape_stats(rng.laplace(size=n))
    # Laplace: Pearson kurtosis 6; sd of the sample kurtosis ~ sqrt((mu8/mu2^4 - 36)/n) = 29/sqrt(n).
    assert abs(lap.kurtosis - 6.0) < 5 * math.sqrt(840 / n)
    assert lap.normality_p < 1e-10 and lap.anderson > 10


def test_shape_stats_zero_fraction_quantiles_and_nonfinite():
    x = np.array([0.0, 0.0, 1.0, 2.0, 3.0, np.nan, np.inf, -1.0, 0.0, 5.0])
    s = D.shape_stats(x)
    assert s.n == 8
    assert s.zero_fraction == pytest.approx(3 / 8)
    u = D.shape_stats(np.random.default_rng(1).random(100_000))
    for level, q in u.quantiles.items():  # uniform(0,1): quantile = level, sd ~ 1/sqrt(n)
        assert q == pytest.approx(level, abs=0.01)
    assert u.kurtosis == pytest.approx(1.8, abs=0.03)  # uniform Pearson kurtosis 9/5


# --- power laws ------------------------------------------------------------------------------


def test_scan_ks_matches_scipy_kstest_per_candidate():
    rng = np.random.default_rng(2)
    x = np.sort(np.concatenate([rng.random(60) * 2, pareto(rng, 140, 2.7, 2.0)]))
    cand = np.arange(0, x.size - 10, 7)
    alpha, ks = D._scan(x[None, :], cand)
    for c, i in enumerate(cand):
        tail = x[i:]
        a_mle = 1 + tail.size / np.sum(np.log(tail / x[i]))
        assert alpha[0, c] == pytest.approx(a_mle, rel=1e-10)
        ref = stats.kstest(tail, stats.pareto(b=a_mle - 1, scale=x[i]).cdf).statistic
        assert ks[0, c] == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_pareto_recovers_alpha_and_bootstrap_has_nominal_size():
    rng = np.random.default_rng(3)
    draws, level = 20, 0.1
    fits = [D.fit_power_law(pareto(rng, 1000, 2.5), n_bootstrap=100, rng=rng, compare=False)
            for _ in range(draws)]
    for f in fits:
        assert abs(f.alpha - 2.5) < 4 * f.sigma
    # A true power law is rejected with probability ~ level; allow 3 binomial sds.
    rejected = np.mean([f.p_value < level for f in fits])
    assert rejected <= level + 3 * math.sqrt(level * (1 - level) / draws)


def test_pareto_tail_above_a_body_finds_xmin():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.random(2000) * 5.0, pareto(rng, 2000, 3.0, xmin=5.0)])
    f = D.fit_power_law(x, n_bootstrap=50, rng=rng)
    assert 4.0 < f.xmin < 7.0
    assert abs(f.alpha - 3.0) < 4 * f.sigma
    assert f.p_value >= 0.05 and f.lr_exponential > 0


# Rates of "called a power law" measured over 50 draws (scripts/tail_estimator_rates.py):
# gaussian 0.00, lognormal(0,1) 0.12, relu product 0.16; bounds leave room for 20-draw
# fluctuations.
# About 2-3 s per case on a quiet 2-core machine.
@pytest.mark.slow
@pytest.mark.parametrize(("name", "bound"),
                         [("gaussian", 0.1), ("lognormal", 0.3), ("relu_product", 0.3)])
def test_light_or_lognormal_tails_are_not_called_power_laws(name, bound):
    rng = np.random.default_rng(5)
    n, draws = 5000, 20
    gen = {
        "gaussian": lambda: rng.standard_normal(n),
        "lognormal": lambda: rng.lognormal(0.0, 1.0, n),
        # heavy-looking (Pearson kurtosis 36) but exponentially decaying: masked Gaussian
        # times relu(Gaussian), the wide-relu gradient entry model.
        "relu_product": lambda: rng.standard_normal(n) * (rng.random(n) < 0.5)
        * np.maximum(rng.standard_normal(n), 0.0),
    }[name]
    called = [D.fit_power_law(gen(), n_bootstrap=50, rng=rng).is_power_law(0.1)
              for _ in range(draws)]
    assert np.mean(called) <= bound


def test_likelihood_ratios_agree_with_powerlaw_package():
    powerlaw = pytest.importorskip("powerlaw")
    rng = np.random.default_rng(6)
    x = pareto(rng, 2000, 2.5)
    f = D.fit_power_law(x, n_bootstrap=0, rng=0)
    tail = D.tail_values(x)
    tail = tail[tail >= f.xmin]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pf = powerlaw.Fit(tail, xmin=f.xmin, verbose=0)
        r_exp, p_exp = pf.distribution_compare("power_law", "exponential", normalized_ratio=True)
        ll_logn = pf.lognormal.loglikelihoods(tail).sum()
    assert f.alpha == pytest.approx(pf.power_law.alpha, rel=1e-8)
    assert f.lr_exponential == pytest.approx(r_exp, rel=1e-4)
    assert f.p_exponential == pytest.approx(p_exp, rel=1e-3, abs=1e-8)
    # our truncated-lognormal MLE reaches at least powerlaw's likelihood
    assert D._loglik_lognormal(tail, f.xmin).sum() >= ll_logn - 1e-6 * abs(ll_logn)


def test_power_law_pass_fraction_separates_pareto_from_gaussian_columns():
    rng = np.random.default_rng(7)
    par = np.stack([pareto(rng, 400, 2.5) for _ in range(8)], axis=1)
    gau = rng.standard_normal((3000, 8))
    assert D.power_law_pass_fraction(par, n_bootstrap=50, rng=rng) >= 0.75
    assert D.power_law_pass_fraction(gau, n_bootstrap=50, rng=rng) <= 0.25


# --- tail indices ----------------------------------------------------------------------------


def test_hill_on_pareto():
    rng = np.random.default_rng(8)
    k = 1000
    est = [D.hill_tail_index(pareto(rng, 10_000, 2.5), k) for _ in range(5)]
    # survival index a = alpha - 1 = 1.5; sd of Hill ~ a/sqrt(k) per draw
    assert abs(np.mean(est) - 1.5) < 4 * 1.5 / math.sqrt(k * len(est))


def test_stable_tail_index_and_its_bias_on_student_t():
    rng = np.random.default_rng(9)
    levy = stats.levy_stable.rvs(1.5, 0.0, size=(10, 10_000), random_state=rng)
    est = np.array([D.stable_tail_index(r) for r in levy])
    assert abs(est.mean() - 1.5) < 4 * est.std(ddof=1) / math.sqrt(len(est))
    # Gaussian: clipped at 2, mean 1.96-1.97 and sd 0.05 per draw at n = 10^4 (200 draws;
    # scripts/tail_estimator_rates.py)
    gauss = [D.stable_tail_index(rng.standard_normal(10_000)) for _ in range(5)]
    assert np.mean(gauss) > 1.96 - 4 * 0.05 / math.sqrt(5)
    # Student-t(3) has finite variance yet the stable estimator reports alpha < 2 (bias; mean
    # 1.76, sd 0.07 per draw), while Hill sees survival index ~3 > 2.
    t3 = rng.standard_t(3, size=(5, 10_000))
    assert np.mean([D.stable_tail_index(r) for r in t3]) < 1.9
    assert np.mean([D.hill_tail_index(r, 200) for r in t3]) > 2.3


# --- spectra ---------------------------------------------------------------------------------


def test_spectrum_exponent_exact_and_noisy():
    k = np.arange(1, 201, dtype=float)
    exact = D.spectrum_exponent(3.0 * k**-1.3, rank_window=(1, 200))
    assert exact.s == pytest.approx(1.3, abs=1e-10) and exact.r2 == pytest.approx(1.0)
    rng = np.random.default_rng(10)
    noisy = 3.0 * k**-0.8 * np.exp(0.2 * rng.standard_normal(k.size))
    fit = D.spectrum_exponent(rng.permutation(noisy), rank_window=(5, 150))
    assert (fit.lo, fit.hi) == (5, 150)
    assert abs(fit.s - 0.8) < 0.15  # sorting noisy values makes residuals correlated
    default = D.spectrum_exponent(np.concatenate([k**-2.0, np.zeros(10)]))
    assert default.hi == 100 and default.s == pytest.approx(2.0, abs=1e-10)


# --- von Mises-Fisher ------------------------------------------------------------------------


def test_bessel_ratio_closed_form_and_recurrence():
    kap = np.array([0.01, 0.5, 2.0, 30.0, 400.0])
    assert np.allclose(D.bessel_ratio(3, kap), 1 / np.tanh(kap) - 1 / kap, rtol=1e-10)
    nu = 50.0  # d = 100, where ive does not underflow
    direct = special.ive(nu, kap) / special.ive(nu - 1, kap)
    assert np.allclose(D._bessel_ratio_recurrence(nu, kap), direct, rtol=1e-10)
    big = D.bessel_ratio(200_000, np.array([10.0, 1e4, 1e5]))
    assert np.all(np.isfinite(big)) and np.all(np.diff(big) > 0)
    assert big[0] == pytest.approx(10.0 / 200_000, rel=1e-6)  # A_d(k) ~ k/d for k << d


@pytest.mark.parametrize(("dim", "kappa"), [(10, 20.0), (200, 150.0)])
def test_vmf_recovers_kappa_from_scipy_samples(dim, kappa):
    n = 2000
    mu = np.zeros(dim)
    mu[0] = 1.0
    x = stats.vonmises_fisher(mu, kappa).rvs(n, random_state=np.random.default_rng(11))
    fit = D.vmf_concentration(x)
    a = D.bessel_ratio(dim, kappa)
    a_prime = 1 - a**2 - (dim - 1) / kappa * a  # Fisher information per observation
    se = 1 / math.sqrt(n * a_prime)
    assert abs(fit.kappa - kappa) < 4 * se
    assert abs(fit.kappa_banerjee - kappa) < 4 * se + 0.02 * kappa


def test_uniform_directions_sit_at_the_baseline():
    rng = np.random.default_rng(12)
    n, d = 50, 4000
    g = rng.standard_normal((n, d))
    fit = D.vmf_concentration(g)
    assert fit.r_bar_uniform == pytest.approx(1 / math.sqrt(n))
    assert fit.kappa_uniform == pytest.approx(d / math.sqrt(n), rel=0.05)
    # n r_bar^2 ~ chi2_d / d: relative sd of r_bar ~ sqrt(1/(2d)); kappa ~ r_bar d for small r
    assert abs(fit.kappa / fit.kappa_uniform - 1) < 5 * math.sqrt(1 / (2 * d)) + 0.01


def test_vmf_from_gram_matches_rows_and_stochasticity():
    rng = np.random.default_rng(13)
    v = rng.standard_normal((12, 30)) + 0.5
    v *= rng.random((12, 1)) * 3 + 0.1
    gram = v @ v.T
    assert D.vmf_from_gram(gram, 30).kappa == pytest.approx(D.vmf_concentration(v).kappa)
    norms = np.linalg.norm(v, axis=1)
    assert D.norm_cv(norms) == pytest.approx(norms.std() / norms.mean())
    mean = v.mean(axis=0)
    slow = math.sqrt(np.mean(np.sum((v - mean) ** 2, axis=1))) / np.linalg.norm(mean)
    assert D.gradient_stochasticity(gram) == pytest.approx(slow, rel=1e-10)


def test_undefined_direction_and_stochasticity_values_are_nan():
    """One vector, zero vectors and identical vectors: NaN where 0/0 or a single direction
    leaves the value undefined; identical vectors have exactly no spread."""
    one = np.array([[4.0]])
    assert all(math.isnan(getattr(D.vmf_from_gram(one, 5), f)) for f in
               ("r_bar", "kappa", "kappa_banerjee", "r_bar_uniform", "kappa_uniform"))
    assert math.isnan(D.norm_cv(np.array([2.0])))
    zero = np.zeros((4, 4))
    fit = D.vmf_from_gram(zero, 5)
    assert math.isnan(fit.r_bar) and math.isnan(fit.kappa) and math.isnan(fit.kappa_banerjee)
    assert math.isnan(D.norm_cv(np.zeros(4)))
    assert math.isnan(D.gradient_stochasticity(zero))
    v = np.tile(np.array([[0.1, 0.2, 0.3]]), (16, 1))  # 16 copies: sums round off
    assert D.gradient_stochasticity(v @ v.T) == 0.0
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0]])  # mean 0, spread 1
    assert D.gradient_stochasticity(opposite @ opposite.T) == math.inf


def test_stable_tail_index_is_nan_without_an_estimate():
    assert math.isnan(D.stable_tail_index(np.zeros(100)))  # all-zero sample
    assert math.isnan(D.stable_tail_index(np.ones(3)))  # too few values for a block
    # block sums smaller than the values (anti-correlated pairs): 1/a_hat < 0
    assert math.isnan(D.stable_tail_index(np.tile([1.0, -1.0], 50), center=False))


# --- infinite-width baseline -----------------------------------------------------------------


def test_predicted_entry_shape_relu_closed_form_and_batches():
    p = D.predicted_entry_shape("relu", batch_size=4)
    assert p["zero_fraction_single"] == pytest.approx(0.75)
    assert p["kurtosis_single"] == pytest.approx(36.0, rel=1e-6)
    assert p["zero_fraction"] == pytest.approx(0.75**4)
    # Monte Carlo of the stated model: mean of 4 i.i.d. products masked-Gaussian * relu(Gaussian)
    rng = np.random.default_rng(14)
    m = 400_000
    prod = (rng.standard_normal((m, 4)) * (rng.random((m, 4)) < 0.5)
            * np.maximum(rng.standard_normal((m, 4)), 0.0)).mean(axis=1)
    zf = p["zero_fraction"]
    assert np.mean(prod == 0) == pytest.approx(zf, abs=5 * math.sqrt(zf * (1 - zf) / m))
    assert np.mean(prod**4) / np.mean(prod**2) ** 2 == pytest.approx(p["kurtosis"], rel=0.05)
    assert D.predicted_entry_shape("relu", "readout", output_kurtosis=1.0)["kurtosis"] == (
        pytest.approx(6.0, rel=1e-6))


def test_predicted_entry_shape_tanh_matches_model_monte_carlo():
    rng = np.random.default_rng(15)
    q_in, q_out, m = 0.7, 0.5, 1_000_000
    a = np.tanh(math.sqrt(q_in) * rng.standard_normal(m))
    d = (1 - np.tanh(math.sqrt(q_out) * rng.standard_normal(m)) ** 2) * rng.standard_normal(m)
    mc = np.mean((a * d) ** 4) / np.mean((a * d) ** 2) ** 2
    p = D.predicted_entry_shape("tanh", q_in=q_in, q_out=q_out)
    assert p["zero_fraction"] == 0.0
    assert p["kurtosis"] == pytest.approx(mc, rel=0.03)


def _single_example_grads(arch: Architecture, seed: int) -> list[np.ndarray]:
    """Raw dl/dW_l of one example on the sphere (|x|^2 = d), mse loss against y = 0."""
    model = build_model(arch, seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(1, arch.input_dim, generator=gen)
    x = x / x.norm() * math.sqrt(arch.input_dim)
    grads = torch.autograd.grad((0.5 * model(x) ** 2).sum(), list(model.weights))
    return [g.double().numpy().ravel() for g in grads]


def _pearson_kurtosis(g: np.ndarray) -> float:
    c = g - g.mean()
    return float(np.mean(c**4) / np.mean(c**2) ** 2)


def test_simulator_relu_single_example_gradients_match_masked_gaussian_products():
    width, seeds = 512, 4
    arch = Architecture(width=width, depth=3, activation="relu", sigma_w2=2.0, input_dim=32)
    kurt, zeros = [], []
    for seed in range(seeds):
        grads = _single_example_grads(arch, seed)
        for l in (2, 3):  # hidden-to-hidden layers
            kurt.append(_pearson_kurtosis(grads[l - 1]))
            zeros.append(np.mean(grads[l - 1] == 0))
    m = len(kurt)
    pred = D.predicted_entry_shape("relu")
    # Delta method: per sample, var(log K) ~ 2 * 6.33 / width (each factor of the outer
    # product: relu moments 1/2, 3/2, 15/2, 105/2); zero fraction sd ~ 0.354/sqrt(width).
    kurt_se = 36 * math.sqrt(12.67 / (width * m))
    assert abs(np.mean(kurt) - pred["kurtosis"]) < 3 * kurt_se
    assert abs(np.mean(zeros) - pred["zero_fraction"]) < 4 * 0.354 / math.sqrt(width * m)


def test_simulator_tanh_single_example_gradients_match_prediction():
    sw2 = 1.5
    arch = Architecture(width=512, depth=3, activation="tanh", sigma_w2=sw2, input_dim=32)
    # length map q_1 = sw2 |x|^2/d, q_{l+1} = sw2 E tanh(sqrt(q_l) z)^2
    q = [sw2]
    for _ in range(2):
        ql = q[-1]
        q.append(sw2 * integrate.quad(lambda z, ql=ql: np.tanh(math.sqrt(ql) * z) ** 2
                                      * stats.norm.pdf(z), -np.inf, np.inf)[0])
    kurt = {2: [], 3: []}
    for seed in range(4):
        grads = _single_example_grads(arch, seed)
        for l in kurt:
            kurt[l].append(_pearson_kurtosis(grads[l - 1]))
    for l, ks in kurt.items():
        pred = D.predicted_entry_shape("tanh", q_in=q[l - 2], q_out=q[l - 1])["kurtosis"]
        se = np.std(ks, ddof=1) / math.sqrt(len(ks))
        assert abs(np.mean(ks) - pred) < 4 * se + 0.05 * pred  # + O(1/width) ratio bias


def test_simulator_relu_gradients_are_heavy_looking_but_not_power_laws():
    arch = Architecture(width=512, depth=3, activation="relu", sigma_w2=2.0, input_dim=32)
    rng = np.random.default_rng(16)
    called = []
    for seed in range(2):
        grads = _single_example_grads(arch, seed)
        for l in (2, 3):
            assert _pearson_kurtosis(grads[l - 1]) > 20  # far heavier than a Gaussian
            fit = D.fit_power_law(grads[l - 1], n_bootstrap=50, rng=rng, max_sample=5000)
            called.append(fit.is_power_law(0.1))
    assert sum(called) <= 1
