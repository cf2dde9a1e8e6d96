"""Where each prediction of `gradstats.theory` holds: validity domains and model-error allowances.

Every prediction that `gradstats.comparisons` tests names one of the domains below. A domain
function returns ``None`` when a point lies inside it, else the reason it does not (a short
sentence printed beside the verdict ``outside``). Allowances are in the units of the test:
log-ratio units for multiplicative statistics, per-layer log units for decay rates.

Infinite width at init (`infinite_width`). The kernels and signal-propagation predictions
are the width -> infinity limit at fixed depth. Their finite-width corrections are of order
1/width per layer, some accumulating over depth into beta = sum_l 1/n_l over the hidden layers
(Hanin & Nica 2019: the log of the squared input-output Jacobian has variance ~ 5 beta for
relu; Roberts, Yaida & Hanin 2022: the leading correction to the two-point function is
O(depth/width)). We call the prediction valid for beta <= `BETA_MAX` = 0.1 and width >=
`WIDTH_MIN` = 64 (tighter for the statistics the validity map measured: `MEASURED_BETA_MAX`,
below), and allow a model error of ``BETA_COEF * beta + WIDTH_COEF / width`` =
3 beta + 10/width in ln(measured/predicted): at most 0.46 (a factor 1.6, below the factor 2 a
comparison must be able to see) inside the domain. The form and coefficients are measured,
not derived: `scripts/calibrate_compare.py` estimates ln E[measured/predicted] (Cox, 192
seeds) for relu and tanh networks of depth 3-6 and width 128-1024; the largest biases were
0.13 (tanh, width 128, depth 6, at the readout: 2.8 beta) and 0.035 (relu, width 512, depth 3:
18/width), i.e. neither beta nor 1/width alone describes them, and 3 beta + 10/width covers
every measured configuration. The calibration tests (tests/results) check the resulting
false-alarm rate. Outside the domain the theory is not tested: narrow deep networks are
exactly where the infinite-width prediction is expected to fail, and a verdict there would
mean nothing.
The envelope holds in the setting it was measured in; on other data and targets the bias
can be several times larger (docs/measured/width_limit.md). Over 3 or more widths the
``*_limit`` rows (`gradstats.results.compare_limit`) test the same predictions without it:
the intercept of a fit in 1/width, inside this domain at every width used.

Measured boundaries (`MEASURED_BETA_MAX`). The `validity` preset (`gradstats run validity`,
then `gradstats validity`; README, "Where does infinite-width theory hold?") measures the beta
at which the relative error of each per-layer seed mean first exceeds 10%, for relu (ordered
and critical, no bias, batch 1, target 0) and tanh (critical and chaotic). Where that boundary
lies below `BETA_MAX` in some setting, the row's domain stops at the smallest one measured:
``grad_sq_norm`` (readout) at beta = 0.035 (relu critical; ordered: 0.044), the mean
squared gradient being biased up by prod_k (1 + 5/n_k) ~ exp(5 beta) (Hanin & Nica 2019;
`gradstats.theory.finite_width.grad_sq_norm_mean_factor`), +42% [19%, 65%] at width 128,
depth 8 (docs/measured/validity.md); ``bias_grad_sq_norm`` shares its mechanism and limit;
``forward_q`` (last hidden layer) at 0.0625 (relu ordered). ``backward_q``'s smallest boundary
(0.125) lies above `BETA_MAX`, which stays. tanh never crossed 10% within beta <= 0.5.
The limits are the worst
setting's, so a sweep in a milder setting (a teacher target, larger batches) is outside
sooner than it needs to be: conservative, not tuned to any verdict.

Residual and normalized networks: the effective depth (`effective_depth`). In a plain MLP
every hidden layer draws its stream afresh, so each contributes a full 1/width to beta. A
residual block h_l = h_{l-1} + alpha z_l adds to a stream it does not replace; it contributes
the weight w_l = min(1, 2 r_l) with r_l the fraction of the block's output signal it adds at
infinite width (forward: alpha^2 E|z_l|^2 / E|h_l|^2 from the length map; backward:
alpha^2 chi_branch / (1 + alpha^2 chi_branch); the larger of the two), and
beta = (sum_l w_l) / width over the hidden layers. With alpha = 1/sqrt(depth), sum_l w_l
stays O(1) as depth grows (width and depth limits commute: Hayou & Yang 2023); with alpha = 1
and no normalization r_l is constant (0.43 for relu at sigma_w2 = 1.5) and beta grows like
depth/width, with a coefficient close to an MLP's; with LayerNorm before the branch the
stream grows linearly, r_l ~ 1/l and sum_l w_l ~ ln(depth). The factor 2 is measured, not
derived. Without interlayer correlations a block's fluctuations would weigh (4 r + r^2)/5 of a
plain relu layer's 5/width (the cross term 2 h.z and |z|^2), and the forward signal does: in
the `residual` preset (width 512, alpha = 1, sigma_w2 = 1.5, 16 seeds) the per-seed variance
of ln forward_q grows by 2.2/width per block, 0.43 of a plain layer (r = 0.43). The weight
gradients fluctuate more (relu ResNets are hypoactivated and their layers correlated: Li, Nica
& Roy 2021): the median per-seed variance of ln(grad_sq_norm / prediction) was 0.14 at depth
16 and 0.41 at depth 64, i.e. 5.1 and 3.8 beta with w = 2 r, about the 4 beta envelope of
plain MLPs (`conditional_log_variance`), where w = r would make them 9.5 and 7.5 beta
(`scripts/residual_spread.py`, docs/measured/residual_spread.md). With
alpha = 1/sqrt(depth) or LayerNorm the per-seed spreads of the per-layer rows stay inside
4 beta. For a plain MLP, with or without LayerNorm, beta = depth/width as before.

Output distribution at init (`output_distribution`): rows that test the distribution of the
raw outputs f over networks (the unconditional chi^2-like statistics, the NNGP whitening) are
dominated by the tails of f and by its small-eigenvalue directions, where the O(beta)
non-Gaussianity of finite networks weighs most (relu: excess kurtosis of the output ~ 15
depth/width). Measured at depth 6, width 128 (beta = 0.047, relu, 96 seeds): the per-seed
variance of grad_sq_norm / its GP mean was 1.6-2x the GP prediction, so these tests falsely
disagreed 3-5x too often; at beta = 0.006 they are calibrated. Their domain is beta <= 0.02
(`BETA_MAX_OUTPUTS`), and the whitening keeps only eigen-directions with eigenvalue above
10 beta of the largest (`whitening_rcond`), where an O(beta) kernel error is at most 10%.

Lazy training (`lazy_training`). At step t > 0 the kernel-based predictions hold while the
network stays close to its linearization: the empirical NTK on the probe batch has moved by
at most `LAZY_NTK_CHANGE_MAX` = 0.1 (relative Frobenius change, `ntk_rel_change`). A kernel
off by a relative eps changes the predicted gradient norms by about eps and the log of the
training loss by about eps * ln(L_0 / L_t) (gradient flow on a quadratic: L_t = sum_i c_i
exp(-2 lambda_i t), each rate scaled by 1 + eps); these are the allowances.

Plain MLPs (`plain_mlp`): the product bounds (||dL/dW_l|| <= prod_k ||W_k|| ||D_k|| ...,
relu's masked bound, the sigmoid bound), the Hanin-Nica law and the mean-field fixed points
(q*, chi_1) are derived for h_l = W_l phi(h_{l-1}) + b_l; for residual or normalized
networks they are `outside` ("plain MLPs only: residual/norm") and `gradstats.predictions`
does not compute them. The kernel-based rows hold for every composition the kernels
implement (residual blocks, LayerNorm), inside the effective-depth domain above.

Hanin-Nica (`hanin_nica`): the finite-width law of ln grad_sq_norm holds for plain relu MLPs
with Gaussian weights, or orthogonal weights with input_dim <= width, and no bias, one
example (batch_size 1) of sphere data with target 0 and a scalar output
(`gradstats.theory.finite_width`: exact for the readout layer; the hidden layers' equal
variance and mean are a Monte Carlo finding, not a derivation).

Unconditional rows whose null variance includes the finite-width scatter around the
conditional prediction (`conditional_log_variance`) use 4 beta for the per-seed variance of
ln(measured / conditional prediction): the envelope of its measured value (seed SD / sqrt(beta)
between 0.6 and 2.0 for relu and tanh, widths 128-2048, depths 1-6), so the null is fixed by
the theory and not estimated from the seeds under test.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from gradstats import activations
from gradstats.spec import Architecture, Point

BETA_MAX = 0.1
WIDTH_MIN = 64
#: the validity map's smallest measured 10%-error boundary per statistic (module docstring)
MEASURED_BETA_MAX = {"grad_sq_norm": 0.035, "bias_grad_sq_norm": 0.035, "forward_q": 0.0625}
BETA_MAX_OUTPUTS = 0.02
BETA_COEF = 3.0
WIDTH_COEF = 10.0
CONDITIONAL_SPREAD_COEF = 4.0
LAZY_LOSS_ALLOWANCE_MAX = 0.5
LAZY_NTK_CHANGE_MAX = 0.1


RESIDUAL_WEIGHT_COEF = 2.0  # w_l = min(1, 2 r_l): the measured envelope (module docstring)
_QUADRATURE_POINTS = 64  # probabilists' Gauss-Hermite: exact for relu's E[phi^2], E[phi'^2]


@functools.cache
def _gauss_rule() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(_QUADRATURE_POINTS)
    return x, w / math.sqrt(2 * math.pi)


def _gauss_moments(name: str, q: float) -> tuple[float, float]:
    """E[phi(sqrt(q) z)^2] and E[phi'(sqrt(q) z)^2], z ~ N(0, 1) (numpy quadrature)."""
    x, w = _gauss_rule()
    phi, dphi = activations.functions(name, "numpy")
    u = math.sqrt(max(q, 0.0)) * x
    return float(w @ phi(u) ** 2), float(w @ dphi(u) ** 2)


@functools.cache
def effective_depth(arch: Architecture, q0: float = 1.0,
                    weight_coef: float = RESIDUAL_WEIGHT_COEF) -> float:
    """sum over hidden layers of the weight w_l each contributes to beta (module docstring):
    1 for a plain layer (the first layer, every hidden layer of a plain MLP), min(1, c r_l)
    for a residual block, r_l the fraction of the block's output signal it adds (forward or
    backward, whichever is larger) at infinite width. ``q0``: the input mean square;
    ``weight_coef``: c, the measured envelope 2 by default (scripts/residual_spread.py
    compares c = 1)."""
    if not arch.residual or arch.depth < 2:
        return float(arch.depth)
    a2, sw2 = arch.alpha**2, float(arch.sigma_w2)
    sb2 = float(arch.sigma_b2) if arch.bias else 0.0
    normalized = arch.norm != "none"  # the branch sees its input at unit mean square
    q = sw2 * q0 + sb2  # the stream after layer 1
    total = 1.0
    for _ in range(2, arch.depth + 1):
        e_phi2, e_dphi2 = _gauss_moments(arch.activation, 1.0 if normalized else q)
        added = a2 * (sw2 * e_phi2 + sb2)
        chi = a2 * sw2 * e_dphi2 / (q if normalized else 1.0)
        r = max(added / (q + added), chi / (1.0 + chi))
        total += min(1.0, weight_coef * r)
        q += added
    return total


def beta(point: Point) -> float:
    """sum over hidden layers of w_l/width: depth / width for a plain MLP (with or without
    normalization); the effective depth over width for a residual network."""
    return effective_depth(point.arch) / point.arch.width


def _beta_label(point: Point) -> str:
    return "effective depth/width" if point.arch.residual else "depth/width"


def plain_mlp(point: Point) -> str | None:
    """None for a plain MLP (no residual blocks, no normalization), else the reason: the
    prediction (product bounds, Hanin-Nica, mean-field fixed points) is derived for
    h_l = W_l phi(h_{l-1}) only."""
    a = point.arch
    if a.is_mlp:
        return None
    if a.norm == "batch":  # the batch-norm reason, as every per-pair row gives it
        return batch_normalized(point)
    if a.is_cnn:
        return 'plain MLPs only: this is a convolutional network (architecture = "cnn")'
    parts = ([f"residual blocks (alpha = {a.alpha:.3g})"] if a.residual else []) + (
        [f"{a.norm} norm"] if a.norm != "none" else [])
    return "plain MLPs only: residual/norm (this network has " + " and ".join(parts) + ")"


def kernel_parameterization(point: Point) -> str | None:
    """None when the NNGP/NTK recursions describe the point's parameterization (a kernel row
    of the abc table: ntk, standard), else the reason."""
    from gradstats import parameterization as pz

    if not pz.get(point.arch.parameterization).kernel_row:
        return (f"parameterization {point.arch.parameterization}: effective weights are not "
                "sigma_w^2/fan_in in every layer (the kernel recursions do not apply)")
    return None


def infinite_width(point: Point, beta_max: float = BETA_MAX) -> str | None:
    """None inside the infinite-width domain at init (beta <= ``beta_max``: 0.1, or a row's
    `MEASURED_BETA_MAX`; width >= 64, a kernel parameterization), else the reason."""
    reason = kernel_parameterization(point)
    if reason:
        return reason
    b = beta(point)
    if b > beta_max:
        return (f"{_beta_label(point)} = {b:.3g} > {beta_max:g}: finite-width effects are "
                "not small")
    if point.arch.width < WIDTH_MIN:
        return f"width {point.arch.width} < {WIDTH_MIN}: finite-width effects are not small"
    return None


def output_distribution(point: Point) -> str | None:
    """None inside the domain of predictions of the output distribution (beta <= 0.02)."""
    b = beta(point)
    if b > BETA_MAX_OUTPUTS:
        return (f"{_beta_label(point)} = {b:.3g} > {BETA_MAX_OUTPUTS:g}: the non-Gaussian "
                "tails of finite-width outputs dominate this statistic")
    return infinite_width(point)


def whitening_rcond(point: Point) -> float:
    """Relative eigenvalue cut of the NNGP whitening: 10 beta (1e-6 .. 0.5)."""
    return float(min(max(10 * beta(point), 1e-6), 0.5))


def finite_width_allowance(point: Point) -> float:
    """Model-error allowance of infinite-width predictions, ln units: 3 beta + 10/width
    (<= 0.46 inside the domain)."""
    width = max(point.arch.width, WIDTH_MIN)
    return BETA_COEF * min(beta(point), BETA_MAX) + WIDTH_COEF / width


def lazy_training(step: int, ntk_change: float) -> str | None:
    """None when a step-``step`` prediction from the kernel at init applies (step 0, or the
    measured relative NTK change <= 0.1), else the reason."""
    if step == 0:
        return None
    if not ntk_change == ntk_change:  # NaN: not measured (or diverged)
        return "NTK change not measured: the lazy-regime validity cannot be checked"
    if ntk_change > LAZY_NTK_CHANGE_MAX:
        return (f"NTK moved by {ntk_change:.2g} > {LAZY_NTK_CHANGE_MAX:g} by step {step}: "
                "not in the lazy regime")
    return None


def hanin_nica(point: Point) -> str | None:
    """None inside the setting of the Hanin-Nica finite-width law, else the reason."""
    a, t, d = point.arch, point.training, point.data
    problems = []
    if kernel_parameterization(point):
        problems.append(f"parameterization {a.parameterization} (ntk or standard)")
    if not a.is_mlp:
        problems.append("a plain MLP (no residual blocks, no normalization)")
    if a.activation != "relu":
        problems.append(f"activation {a.activation} (relu only)")
    if a.init == "orthogonal" and a.input_dim > a.width:
        problems.append(f"input_dim {a.input_dim} <= width {a.width} (orthogonal weights: "
                        "isometric layers)")
    if a.bias and a.sigma_b2 > 0:
        problems.append("a bias (none allowed)")
    if t.batch_size != 1:
        problems.append(f"batch_size {t.batch_size} (one example)")
    if d.name != "sphere" or d.teacher != "zero" or t.loss != "mse":
        problems.append("targets 0 on sphere data with mse")
    if a.output_dim != 1:
        problems.append("several outputs")
    return "Hanin-Nica setting needs " + ", ".join(problems) if problems else None


def conditional_log_variance(point: Point) -> float:
    """Envelope of Var over seeds of ln(measured / conditional prediction): 4 beta."""
    return CONDITIONAL_SPREAD_COEF * beta(point)


def any_network(point: Point) -> str | None:
    """Exact statements hold for every network."""
    return None


def lazy_domain(point: Point) -> str | None:
    """The linearized-SGD predictions: a kernel parameterization trained by sgd/momentum."""
    reason = kernel_parameterization(point)
    if reason:
        return reason
    if point.training.optimizer not in ("sgd", "momentum"):
        return f"optimizer {point.training.optimizer}: the linearization is of SGD"
    return None


# The NTK change during lazy training (Dyer & Gur-Ari 2019, Huang & Yau 2019): O(1/width) at
# fixed lr and step count, below the O(width^-1/2) fluctuation at init. Measured (the
# `ntk-change` preset: ntk parameterization, depth 2, lr 0.5, 20 steps, widths 64-4096, 4
# seeds): erf's local slopes are -1.02, -1.14, -0.74 (± 0.1) and -0.98 ± 0.04 overall; relu
# approaches -1 slowly (-0.55, -0.79, -0.95: the -0.77 fitted over 64-1024 was a crossover,
# plausibly the kink's units flipping sign, which a smooth activation does not have). The fit
# uses only widths at or above NTK_CHANGE_WIDTH_MIN.
NTK_CHANGE_WIDTH_MIN = {"piecewise": 1024, "smooth": 128}


def ntk_change(point: Point) -> str | None:
    """The lazy domain of the NTK-change exponent: `lazy_domain`, the ntk parameterization,
    and a width where the measured slope has reached its asymptote (NTK_CHANGE_WIDTH_MIN).

    The standard parameterization is refused: its SGD at a fixed lr is the ntk
    parameterization's at lr x fan_in (Delta W = (sigma_w^2/n) Delta omega), so the width^-1
    NTK change becomes width^0 (the +1 of its output change in the coord check). The
    coord-check preset measured -0.22 +- 0.13 there (relu, sgd, lr 1e-3, widths 1024-4096;
    `scripts/ntk_change_standard.py`), 5.8 SE above the -1 of this row."""
    reason = lazy_domain(point)
    if reason:
        return reason
    if point.arch.parameterization != "ntk":
        return (f"parameterization {point.arch.parameterization}: a fixed lr is not lazy as "
                "width grows (the NTK change is ~width^0, not width^-1); ntk only")
    kind = "piecewise" if activations.get(point.arch.activation).piecewise else "smooth"
    w_min = NTK_CHANGE_WIDTH_MIN[kind]
    if point.arch.width < w_min:
        return (f"width {point.arch.width} < {w_min}: the NTK change of a {kind} activation "
                "has not reached its width^-1 regime (measured, `ntk-change` preset)")
    return None


# --- batch normalization (docs/batchnorm.md) -------------------------------------------------
# The growth rate lambda(B) of ||dL/dW_l||^2 toward the input is fitted per seed as the OLS slope
# of ln grad_sq_norm over hidden layers BN_FIRST_LAYER..depth - BN_READOUT_GAP: layer 1 sees the
# raw inputs (its own input Gram, and the inputs are not at the BSB1 fixed point), and the
# hidden layers next to the readout show a finite-width transient with the y = 0 mse loss
# (docs/batchnorm.md). Inside the domain below the measured finite-width deviation of that
# slope from ln lambda is |width x deviation| <= 5.1 +- 2.0 (relu, tanh; B = 8, 32; widths
# 256-1024; docs/batchnorm.md) and <= 1.8 +- 0.4 on sphere data with teacher targets (widths
# 128-512): the allowance is BN_WIDTH_COEF / width per layer.
BN_FIRST_LAYER = 2
BN_READOUT_GAP = 5
BN_MIN_FIT_LAYERS = 4
BN_WIDTH_MIN = 256
BN_BATCH_MIN = 6
BN_WIDTH_COEF = 6.0
BN_ACTIVATIONS = ("relu", "tanh")  # measured; linear only at batch_size <= BN_LINEAR_BATCH_MAX
BN_LINEAR_BATCH_MAX = 8
BN_EPS_FACTOR = 100.0  # the per-unit batch variance must exceed 100 eps


def batch_norm_rate(point: Point) -> str | None:
    """None inside the domain of the batch-norm growth rate lambda(B), else the reason."""
    from gradstats.layers.norm import BATCH_NORM_EPS
    from gradstats.theory.batchnorm import relu_sphere_moments, sphere_moments

    a, t = point.arch, point.training
    if a.norm != "batch":
        return f"norm = {a.norm!r}: the rate is that of batch-normalized networks"
    if a.residual:
        return "residual blocks: the rate is derived for the plain batch-normalized MLP"
    if t.batch_size < BN_BATCH_MIN:
        return (f"batch_size {t.batch_size} < {BN_BATCH_MIN}: a layer's backward factor has "
                "infinite variance (E chi^-4_{B-1} = inf for B <= 5), finite-width corrections "
                "are not bounded by the measured allowance")
    linear_ok = a.activation == "linear" and t.batch_size <= BN_LINEAR_BATCH_MAX
    if a.activation not in BN_ACTIVATIONS and not linear_ok:
        if a.activation == "linear":
            return (f"linear at batch_size {t.batch_size} > {BN_LINEAR_BATCH_MAX}: the forward "
                    "Gram relaxes by (B-1)/(B+1) per layer, finite-width errors exceed the rate "
                    "below width ~ 25 B (docs/batchnorm.md)")
        return (f"activation {a.activation}: finite-width corrections of the rate measured for "
                f"{', '.join(BN_ACTIVATIONS)} (and linear at B <= {BN_LINEAR_BATCH_MAX}) only")
    if a.width < BN_WIDTH_MIN:
        return f"width {a.width} < {BN_WIDTH_MIN}: finite-width corrections not measured"
    if a.init != "gaussian":
        return f"init {a.init}: the rate is measured for Gaussian weights"
    if t.loss != "mse":
        return f"loss {t.loss}: the fit window is measured with the mse loss"
    fitted = a.depth - BN_READOUT_GAP - BN_FIRST_LAYER + 1
    if fitted < BN_MIN_FIT_LAYERS:
        return (f"depth {a.depth} < {BN_FIRST_LAYER + BN_READOUT_GAP + BN_MIN_FIT_LAYERS - 1}: "
                f"fewer than {BN_MIN_FIT_LAYERS} layers between layer {BN_FIRST_LAYER} and the "
                f"{BN_READOUT_GAP} hidden layers next to the readout")
    mom = (relu_sphere_moments(t.batch_size) if a.activation == "relu"
           else sphere_moments(a.activation, t.batch_size))
    if a.sigma_w2 * mom.nu < BN_EPS_FACTOR * BATCH_NORM_EPS:
        return (f"sigma_w2 nu = {a.sigma_w2 * mom.nu:.2g} < {BN_EPS_FACTOR:g} eps: batch norm's "
                "eps is not negligible")
    return None


def batch_norm_rate_allowance(point: Point) -> float:
    """Model-error allowance of the fitted per-layer rate: BN_WIDTH_COEF / width (ln units)."""
    return BN_WIDTH_COEF / max(point.arch.width, 1)


def batch_normalized(point: Point) -> str | None:
    """The reason a per-pair prediction (kernels, per-example NTK, MLP bounds, lazy training)
    does not apply to a batch-normalized network; None for any other network."""
    if point.arch.norm != "batch":
        return None
    return ("norm = 'batch': the batch statistics couple the examples (no per-pair kernel, "
            "per-example NTK or MLP product bound); its rows are bn_grad_sq_norm_rate and "
            "weight_sq_norm")





# --- preactivation kurtosis (`gradstats.theory.finite_width.preact_excess_kurtosis`) --------
# The leading order in 1/n of the four-point vertex: the next-order term is the expansion of
# 3 [(1 + r/n)^(l-1) - 1] for homogeneous activations without bias (relative kappa/6
# (l-2)/(l-1)); for others (tanh, gelu, relu with bias, softplus, sigmoid, off criticality;
# width 32, 20000 networks: scripts/mc_preact_kurtosis.py, docs/measured/preact_kurtosis_mc.md)
# the largest resolved relative error (MC - leading)/leading was 2.18 +- 0.27 (l-1)/n (gelu
# sigma_w2 = 3, layer 6; relu sigma_w2 = 2.5 with bias 1.89 +- 0.26): the allowance is
# KURTOSIS_NEXT_ORDER_COEF (l-1)/n x the leading order, inside (l-1)/n <= KURTOSIS_LN_MAX
# (at most 0.45 of the prediction; tests/theory). The comparison `preact_kurtosis` tests the
# exact product formula (homogeneous activations, no bias) with no allowance, at batch_size 1,
# with the exact null standard error, on hidden layers whose predicted kurtosis is at most
# KURTOSIS_MAX: its false-alarm rate was at or below the nominal level there (0.7-1.3% at
# level 1%, 32-128 seeds, width 64-128), while the sample standard error gave 2-4x.
KURTOSIS_NEXT_ORDER_COEF = 3.0
KURTOSIS_LN_MAX = 0.15
KURTOSIS_MAX = 1.0


def preact_kurtosis_setting(point: Point) -> str | None:
    """None where `finite_width.preact_excess_kurtosis` applies to the recorded layers: a
    plain MLP with Gaussian weights in a kernel parameterization, on sphere data (every input
    of mean square 1, so the examples of a minibatch share one law); else the reason."""
    a, d = point.arch, point.data
    problems = []
    if kernel_parameterization(point):
        problems.append(f"parameterization {a.parameterization} (ntk or standard)")
    if not a.is_mlp:
        problems.append("a plain MLP (no residual blocks, no normalization)")
    if a.init != "gaussian":
        problems.append(f"init {a.init} (Gaussian weights only)")
    if d.name != "sphere":
        problems.append(f"sphere data (inputs of equal norm; got {d.name})")
    return "pre-activation kurtosis needs " + ", ".join(problems) if problems else None


def preact_kurtosis(point: Point) -> str | None:
    """None inside the domain of the `preact_kurtosis` comparison, else the reason: the
    setting above, a homogeneous activation without bias (the exact product formula) and
    batch_size 1 (the exact null standard error: the per-seed fourth moments are heavy-tailed
    and their sample standard error made the test falsely disagree 2-4x too often at 32-128
    seeds, measured). The per-layer condition is `preact_kurtosis_layer`."""
    reason = preact_kurtosis_setting(point)
    problems = [reason.removeprefix("pre-activation kurtosis needs ")] if reason else []
    a = point.arch
    if not activations.get(a.activation).piecewise:
        problems.append(f"a piecewise-linear activation (got {a.activation}: only the "
                        "leading order, untested here)")
    if a.bias and a.sigma_b2 > 0:
        problems.append("no bias (the exact formula)")
    if point.training.batch_size != 1:
        problems.append(f"batch_size 1 (got {point.training.batch_size})")
    return "pre-activation kurtosis test needs " + ", ".join(problems) if problems else None


def preact_kurtosis_layer(point: Point, layer: int, predicted: float) -> str | None:
    """None when hidden layer ``layer`` (2..depth; layer 1 is Gaussian exactly) is tested:
    the predicted kurtosis at most KURTOSIS_MAX (beyond it the seed average of the
    heavy-tailed m4 is biased low at a few hundred seeds), else the reason."""
    if layer < 2 or layer > point.arch.depth:
        return "layer 1 (Gaussian exactly) and the readout (few units) are not tested"
    if not predicted <= KURTOSIS_MAX:
        return (f"predicted kurtosis {predicted:.3g} > {KURTOSIS_MAX:g}: the per-seed fourth "
                "moments are too heavy-tailed for a seed average")
    return None


DOMAINS = {"infinite_width": infinite_width, "outputs": output_distribution,
           "hanin_nica": hanin_nica, "any": any_network, "lazy": lazy_domain, "ntk_change": ntk_change,
           "mlp": plain_mlp, "batch_norm": batch_norm_rate, "preact_kurtosis": preact_kurtosis}
"""Domain name -> function of the point; the lazy condition (`lazy_training`) is checked per
recorded step on top of it."""
