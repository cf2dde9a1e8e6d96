"""Finite-width fluctuations of ReLU networks at initialization (numpy / scipy).

Setting: relu hidden layers, linear readout, Gaussian weights of variance sigma_w^2/fan_in
(either parameterization: only effective weights matter), widths n_0 = input_dim,
n_1..n_depth = width, n_L = output_dim, and beta = sum_{l=1}^{depth} 1/n_l.

Input-output Jacobian (Hanin & Nica 2019, "Products of many large random matrices and
gradients in deep neural networks"). For a fixed input x and unit vector u, with
J = df/dx(x): ``||J u||^2 = prod_{l=1}^{L} X_l`` where the X_l are INDEPENDENT with

    X_l = (sigma_w^2 / n_{l-1}) chi^2_{K_l},  K_l ~ Binomial(n_l, 1/2)   (hidden layers)
    X_L = (sigma_w^2 / n_{L-1}) chi^2_{n_L}                               (linear readout)

(rows of a Gaussian W_l are independent, and (w, b) -> (-w, -b) flips the gate of a unit
without changing (w . v)^2, so gates are independent of the squared projections; this holds
with Gaussian biases too). Hence ln||J u||^2 has exactly computable mean and variance
(`jacobian_log_norm`, "exact", conditioning on K_l >= 1), and to leading order in 1/n each
hidden layer contributes mean ln(sigma_w^2 n_l / (2 n_{l-1})) - 5/(2 n_l) and variance 5/n_l:
for He initialization, ln(n_0/n_L ||J u||^2) minus the readout's chi^2_{n_L}/n_L term is
~ N(-5 beta/2, 5 beta). This is the form of Hanin & Nica's ReLU result; we derived the
constants above ourselves (we could not check the paper's own normalization) and test them
against Monte Carlo.

Gradient norms (`ln_grad_sq_norm_variance`): one fixed example x, scalar output, mse target 0,
no bias. Then ||dL/dW_l||^2 = f^2 ||df/dh_l||^2 ||a_{l-1}||^2. For the readout layer this is
||a_{L-1}||^4 (sigma_w^2/n_{L-1}) chi^2_1 with ||a_{L-1}||^2 = ||x||^2 prod_{k<L} X_k (the
forward factors have the law of the X_k above, exactly), so

    Var ln ||dL/dW_L||^2 = 4 sum_{k=1}^{depth} Var ln chi^2_{K_k} + psi'(1/2)    (exact;
                         ~ 20 beta + pi^2/2 to leading order).

For hidden layers the backward factors are correlated with the forward ones and with the
readout's chi^2 term (shared gates and readout weights); Monte Carlo shows the sum is the same
for every layer, so we predict the readout value for all layers. This part is an empirical
finding (tested), not a derivation. With output_dim > 1 the hidden-layer values differ and are
returned as NaN (the readout value, with psi'(n_L/2), stays exact).

Empirical NTK (`ntk_relative_fluctuation`): Hanin & Nica (2019, "Finite depth and width
corrections to the neural tangent kernel") show the NTK of a ReLU net fluctuates with a
relative variance growing like exp(c beta) - 1 ~ c beta, i.e. relative std ~ (depth/width)^1/2.
We return sqrt(exp(5 beta) - 1) as the order-of-magnitude prediction (c = 5, the per-layer
constant of the Jacobian above); only the width^-1/2 scaling is claimed and tested. Its
constant is not: a Monte Carlo of Var Theta(x,x) / (E Theta)^2 over 4000 relu nets per
configuration (`scripts/mc_ntk_fluctuation.py`; widths 32-128, depths 2-8, sigma_w2 = 2, no
bias) gives 0.49-0.68 of exp(5 beta) - 1 (e.g. 0.115 +- 0.003 against 0.169 at width 128,
depth 4): the NTK sums the layers' terms, whose fluctuations are correlated but not
identical, so its relative variance is below the single readout term's exp(5 beta) - 1.
No comparison row uses the constant.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from gradstats import activations
from gradstats.spec import Architecture


def _check_relu(arch: Architecture, allow_bias: bool = True, inits: tuple[str, ...] = ("gaussian",)
                ) -> None:
    if arch.activation != "relu":
        raise ValueError(f"finite-width predictions are for relu networks, got {arch.activation!r}")
    if arch.init not in inits:
        raise ValueError("finite-width predictions assume Gaussian weights (init='gaussian')"
                         if inits == ("gaussian",) else
                         f"init {arch.init!r}: this prediction covers {', '.join(inits)}")
    if not allow_bias and arch.bias and arch.sigma_b2 > 0:
        raise ValueError("this prediction assumes no bias (bias=False or sigma_b2=0)")
    if arch.init == "orthogonal":
        hidden_ok = all(arch.fan_out(l) >= arch.fan_in(l) for l in range(1, arch.n_layers))
        if not hidden_ok or arch.output_dim > arch.width:
            raise ValueError("orthogonal weights: the law is exact for isometric hidden layers "
                             "(input_dim <= width) and a readout with output_dim <= width")


def beta(arch: Architecture) -> float:
    """sum of 1/n_l over the hidden layers."""
    return arch.depth / arch.width


def _ln_chi2_binomial(n: int) -> tuple[float, float]:
    """Mean and variance of ln S, S ~ chi^2_K, K ~ Binomial(n, 1/2) conditioned on K >= 1."""
    k, p = _active_counts(n)
    return _mixture(p, special.digamma(k / 2) + math.log(2.0), special.polygamma(1, k / 2))


def _ln_beta_binomial(n: int) -> tuple[float, float]:
    """Mean and variance of ln B, B ~ Beta(K/2, (n-K)/2) (the share of a uniformly random
    direction's squared length on K of n coordinates; B = 1 at K = n), K ~ Binomial(n, 1/2)
    conditioned on K >= 1."""
    k, p = _active_counts(n)
    return _mixture(p, special.digamma(k / 2) - special.digamma(n / 2),
                    special.polygamma(1, k / 2) - special.polygamma(1, n / 2))


@functools.cache
def _active_counts(n: int) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(1, n + 1)
    p = stats.binom.pmf(k, n, 0.5)
    return k, p / p.sum()


def _mixture(p: np.ndarray, means: np.ndarray, variances: np.ndarray) -> tuple[float, float]:
    mean = float(np.sum(p * means))
    return mean, float(np.sum(p * variances) + np.sum(p * (means - mean) ** 2))


def _ln_chi2(k: int) -> tuple[float, float]:
    return float(special.digamma(k / 2) + math.log(2.0)), float(special.polygamma(1, k / 2))


def _layer_log_law(arch: Architecture, layer: int) -> tuple[float, float, float]:
    """Mean and variance of ln X_l and ln E[X_l] (the infinite-width value), where
    ||J u||^2 = prod_l X_l (module doc). Gaussian: X = (sigma_w^2/n_in) chi^2_K (hidden),
    (sigma_w^2/n_in) chi^2_{n_out} (readout). Orthogonal (isometric hidden layers):
    X = sigma_w^2 (n_out/n_in) Beta(K/2, (n_out-K)/2) (hidden), sigma_w^2 (n_out/n_in)
    Beta(n_out/2, (n_in-n_out)/2) (n_in/n_out) (readout: a Haar projection)."""
    sw2, fan_in, fan_out = float(arch.sigma_w2), arch.fan_in(layer), arch.fan_out(layer)
    hidden = layer < arch.n_layers
    ln_mean = math.log(sw2 * fan_out / fan_in) - (math.log(2.0) if hidden else 0.0)
    if arch.init == "gaussian":
        m, v = _ln_chi2_binomial(fan_out) if hidden else _ln_chi2(fan_out)
        return math.log(sw2 / fan_in) + m, v, ln_mean
    if hidden:
        m, v = _ln_beta_binomial(fan_out)
        return math.log(sw2 * fan_out / fan_in) + m, v, ln_mean
    if fan_out == fan_in:
        return math.log(sw2), 0.0, ln_mean
    m = float(special.digamma(fan_out / 2) - special.digamma(fan_in / 2))
    v = float(special.polygamma(1, fan_out / 2) - special.polygamma(1, fan_in / 2))
    return math.log(sw2) + m, v, ln_mean


# leading order in 1/n of a hidden layer's ln X_l - ln E X_l: mean -c/(2n), variance c/n, with
# c = Var(X)/E[X]^2 n: 5 for Gaussian weights (chi^2 length 2/n + gates 3/n), 3 for orthogonal
# (the length is kept; only the gates' share fluctuates)
_PER_LAYER_CONSTANT = {"gaussian": 5.0, "orthogonal": 3.0}


@dataclass(frozen=True)
class JacobianLogNorm:
    """Law of ln(||J u||^2) for a fixed unit u: exact moments and the leading-order form.

    beta = sum 1/n_l over hidden layers; ``mean``/``var``: exact; ``mean_asymptotic`` /
    ``var_asymptotic``: leading order in 1/n_l for the hidden layers (the readout term is
    kept exact).
    """

    beta: float
    mean: float
    var: float
    mean_asymptotic: float
    var_asymptotic: float


def jacobian_log_norm(arch: Architecture) -> JacobianLogNorm:
    """Moments of ln||df/dx u||^2 over the initialization (relu, Gaussian or orthogonal
    weights; hidden layers: 5/n per layer of variance for Gaussian, 3/n for orthogonal)."""
    _check_relu(arch, inits=("gaussian", "orthogonal"))
    c = _PER_LAYER_CONSTANT[arch.init]
    mean = var = mean_a = var_a = 0.0
    for l in range(1, arch.n_layers + 1):
        m, v, ln_mean = _layer_log_law(arch, l)
        if l < arch.n_layers:
            mean_a += ln_mean - c / (2 * arch.fan_out(l))
            var_a += c / arch.fan_out(l)
        else:
            mean_a += m
            var_a += v
        mean += m
        var += v
    return JacobianLogNorm(beta=beta(arch), mean=mean, var=var, mean_asymptotic=mean_a,
                           var_asymptotic=var_a)


def _readout_gradient_law(arch: Architecture) -> tuple[float, float, float]:
    """ln ||dL/dW_L||^2 = ln Y + 2 ln ||a_{L-1}||^2 (one example, mse target 0, no bias),
    ||a_{L-1}||^2 = ||x||^2 prod_{k<L} X_k, ||f||^2 = Y ||a_{L-1}||^2: the exact shift
    E ln g - ln E_inf g, the variance, and ln(E g / E_inf g), all exact."""
    shift = var = ln_factor = 0.0
    for k in range(1, arch.n_layers):
        m, v, ln_mean = _layer_log_law(arch, k)
        shift += 2 * (m - ln_mean)
        var += 4 * v
        n = arch.fan_out(k)  # E[X^2]/E[X]^2 of a hidden layer's factor
        ln_factor += math.log1p(5.0 / n if arch.init == "gaussian" else 3.0 / (n + 2))
    m, v, ln_mean = _layer_log_law(arch, arch.n_layers)
    return shift + m - ln_mean, var + v, ln_factor


def _per_layer(arch: Architecture, readout: float) -> np.ndarray:
    """The readout's value for every layer (hidden layers: the Monte Carlo finding of the
    module doc), NaN for the hidden layers when output_dim > 1."""
    out = np.full(arch.n_layers, readout if arch.output_dim == 1 else np.nan)
    out[-1] = readout
    return out


def ln_grad_sq_norm_variance(arch: Architecture) -> np.ndarray:
    """Predicted Var over seeds of ln ||dL/dW_l||^2, l = 1..L, shape (L,).

    One fixed example, mse target 0, relu without bias, Gaussian or orthogonal weights. Exact
    for the readout; hidden layers: the same value (empirical, see module doc), NaN if
    output_dim > 1. Not affected by the parameterization (raw and effective gradients differ
    by a constant).
    """
    _check_relu(arch, allow_bias=False, inits=("gaussian", "orthogonal"))
    return _per_layer(arch, _readout_gradient_law(arch)[1])


def ln_grad_sq_norm_mean_shift(arch: Architecture) -> np.ndarray:
    """E ln ||dL/dW_l||^2 - ln E_inf ||dL/dW_l||^2, shape (L,): how far the mean log gradient
    norm sits below the log of the infinite-width mean (~ -5 beta/2 + the readout's ln chi^2
    term for Gaussian weights). Setting of `ln_grad_sq_norm_variance`; exact for the readout,
    hidden layers the same value (Monte Carlo finding)."""
    _check_relu(arch, allow_bias=False, inits=("gaussian", "orthogonal"))
    return _per_layer(arch, _readout_gradient_law(arch)[0])


def grad_sq_norm_mean_factor(arch: Architecture) -> np.ndarray:
    """E ||dL/dW_l||^2 / E_inf ||dL/dW_l||^2, shape (L,): the finite-width correction to the
    mean squared gradient, prod over hidden layers of E[X^2]/E[X]^2 = prod (1 + 5/n_k)
    (Gaussian) or prod (n_k + 5)/(n_k + 2) (orthogonal). Exact for the readout (any
    output_dim); hidden layers the same value (Monte Carlo finding), NaN if output_dim > 1.
    Setting of `ln_grad_sq_norm_variance`."""
    _check_relu(arch, allow_bias=False, inits=("gaussian", "orthogonal"))
    factor = math.exp(_readout_gradient_law(arch)[2])
    out = _per_layer(arch, factor)
    out[-1] = factor
    return out


def ntk_relative_fluctuation(arch: Architecture) -> float:
    """Order-of-magnitude relative std of the empirical NTK diagonal, sqrt(exp(5 beta) - 1)."""
    _check_relu(arch)
    return math.sqrt(math.expm1(5.0 * beta(arch)))


def ln_grad_sq_norm_excess_kurtosis(arch: Architecture) -> float:
    """Excess kurtosis of ln ||dL/dW_L||^2 in the setting of `ln_grad_sq_norm_variance`.

    ln ||dL/dW_L||^2 = 2 ln ||a_{L-1}||^2 + ln Y + const with independent terms, so
    cumulants add: the readout's ln chi^2_1 gives a 4th cumulant polygamma(3, 1/2) = pi^4
    (orthogonal: ln Beta(1/2, (n-1)/2), polygamma(3, 1/2) - polygamma(3, n/2)), and each
    hidden layer's ln chi^2_K (K ~ n/2 active units, entering with weight 2) adds
    16 polygamma(3, n/4) (orthogonal: ln Beta(K/2, (n-K)/2), 16 [polygamma(3, n/4) -
    polygamma(3, n/2)]; the binomial spread of K neglected: a few percent at width 16).
    Divided by the variance squared. The variance test of `gradstats.compare` needs it: the
    sample kurtosis of few seeds is biased low and would make that test anti-conservative.
    """
    _check_relu(arch, allow_bias=False, inits=("gaussian", "orthogonal"))
    psi3 = functools.partial(special.polygamma, 3)
    orthogonal = arch.init == "orthogonal"
    n_in = arch.fan_in(arch.n_layers)
    cumulant4 = float(psi3(0.5) - (psi3(n_in / 2) if orthogonal else 0.0))
    for k in range(1, arch.n_layers):
        n = arch.fan_out(k)
        cumulant4 += 16 * float(psi3(n / 4) - (psi3(n / 2) if orthogonal else 0.0))
    var = float(np.asarray(ln_grad_sq_norm_variance(arch), dtype=float).ravel()[-1])
    return cumulant4 / var**2


# --- preactivation kurtosis (Roberts, Yaida & Hanin 2022, four-point vertex) ------------------
# One fixed input x of mean square q0 = ||x||^2 / input_dim; h_{l,i}(x) the pre-activation of
# unit i of dense layer l (l = 1..depth+1, the readout's output included). Given layer l, the
# units of layer l+1 are iid N(0, G_{l+1}) with the random variance
#     G_{l+1} = sigma_b^2 + sigma_w^2 / n_l  sum_j phi(h_{l,j})^2,
# so E h^4 = 3 E G^2, E h^2 = E G and the excess kurtosis of one unit over initializations is
#     kappa_{l+1} = 3 Var(G_{l+1}) / (E G_{l+1})^2.
# h_1 = W_1 x + b_1 is Gaussian exactly: kappa_1 = 0. To leading order in 1/n, with
# K_l the infinite-width variance (length map) and <.>_K the Gaussian average at variance K:
#     V_{l+1} = sigma_w^4 (<phi^4>_K - <phi^2>_K^2) / n_l + chi_par^2 V_l,   V_1 = 0,
#     chi_par = sigma_w^2 d<phi^2>_K / dK,   kappa_l = 3 V_l / K_l^2
# (V_l = Var G_l; RYH's V^(l) / n normalization). For relu at sigma_w^2 = 2 this is
# 15 (l-1)/n, for linear at sigma_w^2 = 1 it is 6 (l-1)/n. For positively homogeneous
# activations without bias G_{l+1} = G_l Y_l with Y_l independent of the past, so exactly
#     kappa_l = 3 [prod_{k<l} (1 + r/n_k) - 1],  r = Var(phi(z)^2) / E[phi(z)^2]^2
# (r = 5 relu, 2 linear), whose expansion shows the next-order term: kappa^2/6 (l-2)/(l-1).

_KURTOSIS_QUADRATURE = 96


@functools.cache
def _hermite_rule() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(_KURTOSIS_QUADRATURE)
    return x, w / math.sqrt(2 * math.pi)


def _phi_moments(name: str, k: float) -> tuple[float, float, float]:
    """<phi^2>_K, <phi^4>_K and d<phi^2>_K/dK (Stein: E[phi^2 (z^2 - 1)] / (2K))."""
    z, w = _hermite_rule()
    phi, _ = activations.functions(name, "numpy")
    p2 = np.asarray(phi(math.sqrt(k) * z), dtype=float) ** 2
    return float(w @ p2), float(w @ p2**2), float(w @ (p2 * (z**2 - 1))) / (2 * k)


def _check_kurtosis_arch(arch: Architecture) -> None:
    if not arch.is_mlp:
        raise ValueError("the preactivation kurtosis is derived for plain MLPs")
    if arch.init != "gaussian":
        raise ValueError("the preactivation kurtosis assumes Gaussian weights (init='gaussian')")


def preact_excess_kurtosis(arch: Architecture, q0: float = 1.0) -> np.ndarray:
    """Leading-order excess kurtosis of one pre-activation unit h_{l,i}(x) over networks.

    Shape (depth+1,): layers 1..depth+1 (the last is the readout's output f_i(x)). One fixed
    input of mean square ``q0`` = ||x||^2 / input_dim (1 on sphere data); any activation,
    sigma_w^2, sigma_b^2 (on or off criticality); Gaussian weights, plain MLP. The recursion
    V_{l+1} = sigma_w^4 (<phi^4> - <phi^2>^2)/n_l + chi_par^2 V_l of the module section above;
    valid to leading order in 1/n (the relative error grows like (l/n)).
    """
    _check_kurtosis_arch(arch)
    sw2 = float(arch.sigma_w2)
    sb2 = float(arch.sigma_b2) if arch.bias else 0.0
    k = sw2 * q0 + sb2
    v = 0.0
    out = np.zeros(arch.n_layers)
    for l in range(1, arch.n_layers):
        if k <= 0:
            out[l:] = np.nan
            break
        p2, p4, dp2 = _phi_moments(arch.activation, k)
        v = sw2**2 * (p4 - p2**2) / arch.fan_in(l + 1) + (sw2 * dp2) ** 2 * v
        k = sw2 * p2 + sb2
        out[l] = 3.0 * v / k**2 if k > 0 else np.nan
    return out


def preact_excess_kurtosis_exact(arch: Architecture) -> np.ndarray:
    """Exact excess kurtosis of one pre-activation unit for a positively homogeneous
    activation (relu, linear, leaky relu, ...) without bias: 3 [prod_{k<l}(1 + r/n_k) - 1],
    r = Var(phi(z)^2)/E[phi(z)^2]^2 (5 for relu, 2 for linear). Any input, any sigma_w^2."""
    _check_kurtosis_arch(arch)
    if not activations.get(arch.activation).homogeneous:
        raise ValueError(f"the exact kurtosis needs a homogeneous activation, got "
                         f"{arch.activation!r}")
    if arch.bias and arch.sigma_b2 > 0:
        raise ValueError("the exact kurtosis assumes no bias (bias=False or sigma_b2=0)")
    p2, p4, _ = _phi_moments(arch.activation, 1.0)
    r = (p4 - p2**2) / p2**2
    growth = np.cumprod([1.0] + [1.0 + r / arch.fan_in(l + 1) for l in range(1, arch.n_layers)])
    return 3.0 * (growth - 1.0)


def _chi2_raw_moment(m: np.ndarray, j: int) -> np.ndarray:
    """E[(chi^2_m)^j] = m (m+2) ... (m+2j-2)."""
    out = np.ones_like(m, dtype=float)
    for i in range(j):
        out = out * (m + 2 * i)
    return out


def _homogeneous_variance_moments(activation: str, n: int, kmax: int = 4) -> np.ndarray:
    """E[Y^k], k = 0..kmax, Y = (1/n) sum_j phi(z_j)^2 / E[phi(z)^2], z_j iid N(0, 1), for a
    piecewise-linear phi of slopes (a, b): sum = a^2 chi^2_{n-K} + b^2 chi^2_K,
    K ~ Binomial(n, 1/2) (exact)."""
    slopes = activations.get(activation).piecewise
    if slopes is None:
        raise ValueError(f"exact moments need a piecewise-linear activation, got {activation!r}")
    a2, b2 = slopes[0] ** 2, slopes[1] ** 2
    kk = np.arange(n + 1)
    p = stats.binom.pmf(kk, n, 0.5)
    mean = n * (a2 + b2) / 2
    out = np.ones(kmax + 1)
    for k in range(1, kmax + 1):
        total = np.zeros(n + 1)
        for j in range(k + 1):
            total += (math.comb(k, j) * a2 ** (k - j) * b2**j
                      * _chi2_raw_moment((n - kk).astype(float), k - j)
                      * _chi2_raw_moment(kk.astype(float), j))
        out[k] = float(p @ total) / mean**k
    return out


def preact_moments_influence_sd(arch: Architecture) -> np.ndarray:
    """Standard deviation over networks of the delta-method influence value of one network's
    layer moments, (m4 - a)/b^2 - 2 a (m2 - b)/b^3 (m2, m4: means over the layer's units of
    h^2, h^4 at one input; a, b their expectations), per layer 1..depth+1: the exact null
    standard error x sqrt(seeds) of the pooled kurtosis E m4/(E m2)^2 - 3 (homogeneous
    piecewise-linear activation, no bias, Gaussian weights, one input). Given layer l-1 the
    units of layer l are iid N(0, G_l), G_l = G_1 prod_{k<l} Y_k with independent Y_k, so
    m2 = G A, m4 = G^2 C with A, C the means of z^2, z^4 over the units: every moment is exact.
    """
    preact_excess_kurtosis_exact(arch)  # checks the setting
    out = np.zeros(arch.n_layers)
    for l in range(1, arch.n_layers + 1):
        g = np.ones(5)
        for k in range(1, l):
            g = g * _homogeneous_variance_moments(arch.activation, arch.fan_in(k + 1))
        units = arch.fan_out(l)
        ea2 = 1 + 2 / units
        ec2 = (105 + 9 * (units - 1)) / units
        eac = (15 + 3 * (units - 1)) / units
        a, b = 3 * g[2], g[1]
        var4 = g[4] * ec2 - a**2
        var2 = g[2] * ea2 - b**2
        cov = g[3] * eac - a * b
        c4, c2 = 1 / b**2, -2 * a / b**3
        out[l - 1] = math.sqrt(max(c4**2 * var4 + 2 * c4 * c2 * cov + c2**2 * var2, 0.0))
    return out
