"""The theory-vs-measurement comparisons, declared as data.

Each `Comparison` names the measured statistic it reads, the stored prediction it tests
against (computed per seed on the worker: `gradstats.predictions`), the test, the steps it
covers, the validity domain of the prediction (`gradstats.theory.validity`), the model-error
allowance and the largest error the test must be able to see for its "agree" to count.
`gradstats.results.compare` walks `COMPARISONS`; docs/compare.md's table is generated from it.
No torch, no JAX here.

Tests (`gradstats.results.stats`):

- ``log_ratio``: per seed ln(measured / predicted); H0 E[measured/predicted] = 1 within the
  allowance; Cox's estimate of ln E[ratio] with a Student-t interval (n_seeds - 1 dof).
- ``quadratic_form``: the per-seed null distribution (mean, variance) of a chi^2-like
  statistic is known from theory (f ~ GP); the seed mean of measured/mean is compared with
  the gamma distribution of that mean and variance (calibrated at any number of seeds).
- ``difference``: per-seed values minus prediction, Student-t, within the allowance.
- ``chi2_whitened``: sum z^2 of NNGP-whitened outputs per seed against chi^2 with as many
  degrees of freedom.
- ``ks``: pooled whitened outputs vs N(0, 1), Kolmogorov-Smirnov.
- ``bound``: a deterministic bound; agrees when it holds on every seed (up to round-off).
- ``pooled_kurtosis``: per seed the layer's moments m2 = forward_q, m4 = forward_m4; the
  excess kurtosis mean(m4)/mean(m2)^2 - 3 over seeds minus the prediction, with the theory's
  exact null standard error (delta method); ``max_detectable`` is relative: an error of
  (MAX_RATIO - 1) x the predicted kurtosis must be visible.
- ``log_variance``: the variance over seeds of ln(measured) vs the predicted variance, on the
  log scale with a kurtosis-aware standard error.
- ``log_mean``: the mean over seeds of ln(measured) vs the predicted mean log, Student-t with
  the sample sd (a ratio of geometric means).
- ``exponent``: OLS fit of ln(value) on ln(width) over widths and seeds; agrees when the
  t-interval widened by the allowance contains the predicted exponent.
- ``width_limit``: per width Cox's ln E[measured / predicted] at init, least squares on
  1/width over >= 3 widths; the intercept (the infinite-width limit) against 0 within the
  allowance |slope| / largest width, Student-t with Welch-Satterthwaite dof. No finite-width
  envelope: a bias b/width extrapolates away in any data setting, a wrong theory does not.

Verdicts per cell (one configuration x layer x step): ``agree``, ``disagree``, ``outside``
(the cell lies outside the prediction's validity domain; its reason is recorded) and
``undetermined`` (the test could not have detected an error of ``max_detectable`` with 80%
power at the Holm level of its row: too few seeds). Within each comparison (a family)
p-values are Holm-adjusted before the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradstats.theory.validity import (
    BETA_COEF,
    BETA_MAX,
    BETA_MAX_OUTPUTS,
    BN_BATCH_MIN,
    BN_FIRST_LAYER,
    BN_LINEAR_BATCH_MAX,
    BN_MIN_FIT_LAYERS,
    BN_READOUT_GAP,
    BN_WIDTH_COEF,
    BN_WIDTH_MIN,
    KURTOSIS_MAX,
    LAZY_NTK_CHANGE_MAX,
    MEASURED_BETA_MAX,
    NTK_CHANGE_WIDTH_MIN,
    WIDTH_COEF,
    WIDTH_MIN,
)

DEFAULT_LEVEL = 0.01
MAX_RATIO = 2.0  # "agree" requires that a theory off by 2x would have been flagged (80% power)


def _ks_factor2_distance() -> float:
    """sup_x |Phi(x / sqrt 2) - Phi(x)|: the CDF distance of a factor-2 error in the output
    variance, the error a KS row must be able to see."""
    from scipy.stats import norm

    x = np.linspace(0.0, 6.0, 60001)
    return float(np.max(np.abs(norm.cdf(x / np.sqrt(2.0)) - norm.cdf(x))))


@dataclass(frozen=True)
class Comparison:
    """One declared theory-vs-measurement comparison (a row of the table, a test family).

    measured / predicted: dataset variable names (predicted may be a tuple: null mean, var).
    test: see the module docstring. steps: ``"init"`` (step 0 only), ``"training"`` (every
    recorded step; step > 0 inside the lazy domain), ``"trained"`` (recorded steps > 0 only)
    or ``"last"`` (each configuration's last finite step). domain: a key of
    `gradstats.theory.validity.DOMAINS` (``"any"``: an exact statement; ``"mlp"``: exact for
    plain MLPs, outside for residual or normalized networks). layers: ``"all"``,
    ``"hidden"`` (readout excluded), ``"decay"`` (rates over layers ``first_layer..depth``)
    or ``"window"`` (a per-seed rate fitted over layers ``first_layer..depth - readout_gap``
    against a predicted rate with no layer dim).
    allowance: ``"finite_width"`` (3 beta + 10/width in ln), ``"rate"`` (the per-layer
    allowance spread over the fitted layers), ``"bn_width"`` (BN_WIDTH_COEF / width per
    layer), ``"lazy_loss"``, ``"exponent"``
    or ``"none"``; at step > 0 the relative NTK change is added for kernel-based rows.
    max_detectable: the error the test must be able to see (80% power at the Holm level of its
    row) for "agree": a ratio (ratio tests), an absolute difference (difference tests; for
    ``"decay"`` rows ln 2 / depth per layer), an exponent difference, or a KS distance.
    null_inflation: add the finite-width scatter around the conditional prediction to the
    theory's null variance (`gradstats.theory.validity.conditional_log_variance`).
    kurtosis: the prediction variable holding the per-seed law's excess kurtosis.
    exponent: the predicted width exponent of ``exponent`` rows.
    readout_gap: hidden layers next to the readout left out of a ``"window"`` fit.
    batch_norm: the prediction holds for batch-normalized networks too (every other row is
    ``outside`` at norm = "batch": `gradstats.theory.validity.batch_normalized`).
    """

    name: str
    title: str
    measured: str
    predicted: str | tuple[str, str]
    test: str
    steps: str = "init"
    domain: str = "infinite_width"
    layers: str = "all"
    allowance: str = "finite_width"
    max_detectable: float = MAX_RATIO
    source: str = ""
    needs: str = ""  # what a sweep must have for this row (printed when it is skipped)
    first_layer: int = 1
    null_inflation: bool = False
    kurtosis: str = ""
    exponent: float = math.nan  # width_exponent rows: from gradstats.theory.coord per config
    readout_gap: int = 0
    batch_norm: bool = False
    beta_max: float = BETA_MAX  # the infinite_width domain's beta limit (validity.MEASURED_BETA_MAX)


INFINITE_WIDTH = "gradstats.theory kernels (NNGP/NTK per layer, neural-tangents conventions)"
KS_MAX_DISTANCE = _ks_factor2_distance()
EXPONENT_ALLOWANCE = 0.1  # fitted exponents agree within +-0.1 of the prediction
# an exponent row must be able to tell -1/2 from the neighbouring laws 0 (no decay) and -1
# (the 1/width of Dyer & Gur-Ari): an error of 0.4 must be visible
EXPONENT_MAX_DETECTABLE = 0.4
# coord-check rows: measured step-1 exponents agree within +-0.15 of the abc-table derivation
COORD_EXPONENT_ALLOWANCE = 0.15
# the derived exponents of neighbouring regimes differ by multiples of 1/2 (docs/theory.md):
# a coord row must be able to see an error of 1/2
COORD_MAX_DETECTABLE = 0.5
COORD_SOURCE = ("abc-table scaling of one update (gradstats.theory.coord; docs/theory.md, "
                "Update scaling)")
COORD_NEEDS = 'measure = ["updates"], at least 4 widths and step 1 recorded'
# the batch-norm rate row must be able to see a per-layer factor lambda off by 10%
BN_RATE_MAX_DETECTABLE = math.log(1.1)

# seed-paper claim rows (gradstats.results.claims): a pass rate 0.2 away from 1/2, a factor-2
# change of kappa and a correlation margin of 0.5 must be visible for "agree"
CLAIM_RATE_DETECTABLE = 0.2
CLAIM_CORR_DETECTABLE = 0.5
XIE_SOURCE = "Xie et al. 2023, On the Overlooked Structure of Stochastic Gradients"
XIE_NEEDS = 'measure = ["xie"]'
LEE_SOURCE = "Lee, Cho & Kang 2018, Directional Analysis of SGD via vMF Distributions"
LEE_NEEDS = 'measure = ["directions"] and at least 3 recorded steps'

def _coord_row(name: str, what: str, measured: str, group: str) -> Comparison:
    """A coord-check row: the step-1 width exponent of ``measured`` for the layer ``group`` of
    `gradstats.theory.coord.GROUPS` against the abc-table derivation."""
    return Comparison(name, f"width exponent of {what} after one step", measured, "",
                      "width_exponent", steps="trained", domain="coord", layers=group,
                      allowance="coord_exponent", max_detectable=COORD_MAX_DETECTABLE,
                      source=COORD_SOURCE, needs=COORD_NEEDS)


LIMIT_NEEDS = "at least 3 widths inside the domain at init"


def _limit_row(measured: str, what: str, layers: str = "all") -> Comparison:
    """An infinite-width-limit row: ``measured`` over ``theory_<measured>`` per width at init,
    extrapolated in 1/width (`gradstats.results.compare_limit`)."""
    return Comparison(f"{measured}_limit", f"{what}, extrapolated to infinite width",
                      measured, f"theory_{measured}", "width_limit", layers=layers,
                      allowance="width_limit", source=INFINITE_WIDTH + "; finite-width "
                      "corrections O(1/width) (Hanin & Nica 2019; Roberts, Yaida & Hanin 2022)",
                      needs=LIMIT_NEEDS)


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("grad_sq_norm", "weight-gradient norm given the measured readout gradient",
               "grad_sq_norm", "theory_grad_sq_norm", "log_ratio", steps="training",
               source=INFINITE_WIDTH, beta_max=MEASURED_BETA_MAX["grad_sq_norm"]),
    Comparison("bias_grad_sq_norm", "bias-gradient norm given the measured readout gradient",
               "bias_grad_sq_norm", "theory_bias_grad_sq_norm", "log_ratio", steps="training",
               source=INFINITE_WIDTH, beta_max=MEASURED_BETA_MAX["bias_grad_sq_norm"]),
    Comparison("backward_q", "backward signal given the measured readout signal",
               "backward_q", "theory_backward_q", "log_ratio", steps="training",
               layers="hidden", source="signal propagation, gradient independence"),
    Comparison("forward_q", "mean squared pre-activation (length map)", "forward_q",
               "theory_forward_q", "log_ratio", layers="hidden", source="NNGP diagonal",
               beta_max=MEASURED_BETA_MAX["forward_q"]),
    Comparison("weight_sq_norm", "squared norm of the effective weights", "weight_sq_norm",
               "theory_weight_sq_norm", "log_ratio", domain="any", allowance="none",
               source="exact expectation at init", batch_norm=True),
    Comparison("grad_sq_norm_marginal", "weight-gradient norm over outputs f ~ GP (unconditional)",
               "grad_sq_norm", ("theory_grad_sq_norm_null_mean", "theory_grad_sq_norm_null_var"),
               "quadratic_form", domain="outputs", allowance="none", null_inflation=True,
               source=INFINITE_WIDTH),
    Comparison("output_mean_sq", "mean squared output over f ~ GP", "output_mean_sq",
               ("theory_output_mean_sq_null_mean", "theory_output_mean_sq_null_var"),
               "quadratic_form", domain="outputs", allowance="none", source="NNGP"),
    Comparison("batch_loss", "minibatch loss over f ~ GP", "batch_loss",
               ("theory_batch_loss_null_mean", "theory_batch_loss_null_var"), "quadratic_form",
               domain="outputs", allowance="none", source="NNGP"),
    Comparison("nngp_output_var", "step-0 outputs whitened by the NNGP: mean z^2 = 1",
               "theory_nngp_whitened_output", "", "chi2_whitened", domain="outputs",
               allowance="none", source="NNGP"),
    Comparison("nngp_ks", "step-0 outputs whitened by the NNGP: Gaussian (KS)",
               "theory_nngp_whitened_output", "", "ks", domain="outputs", allowance="none",
               max_detectable=KS_MAX_DISTANCE, source="NNGP"),
    Comparison("backward_q_decay", "decay rate of backward_q per layer (hidden layers)",
               "backward_q", "theory_backward_q", "difference", layers="decay",
               allowance="rate", source="signal propagation: the predicted per-layer curve "
                                        "(its rate tends to ln chi_1 as q_l reaches q*)"),
    Comparison("grad_sq_norm_decay", "decay rate of grad_sq_norm per layer (layers 2..depth)",
               "grad_sq_norm", "theory_grad_sq_norm", "difference", layers="decay",
               allowance="rate", first_layer=2,
               source="signal propagation: the predicted per-layer curve"),
    Comparison("product_bound", "product bound >= gradient norm on every seed", "grad_sq_norm",
               "theory_product_bound", "bound", domain="mlp", allowance="none",
               max_detectable=math.nan, source="gradstats.theory.bounds.product_bound"),
    Comparison("relu_masked_bound", "relu masked bound >= gradient norm on every seed",
               "grad_sq_norm", "theory_relu_masked_bound", "bound", domain="mlp",
               allowance="none", max_detectable=math.nan,
               source="gradstats.theory.bounds.relu_masked_bound"),
    Comparison("ln_grad_sq_norm_var", "variance of ln grad_sq_norm over networks",
               "grad_sq_norm", "theory_ln_grad_sq_norm_var", "log_variance", domain="hanin_nica",
               allowance="none", kurtosis="theory_ln_grad_sq_norm_kurtosis",
               source="Hanin & Nica 2019 (gradstats.theory.finite_width)",
               needs="a point in the Hanin-Nica setting (relu, Gaussian, no bias, batch_size 1, "
                     "teacher zero, sphere data)"),
    Comparison("ln_grad_sq_norm_mean", "mean of ln grad_sq_norm over networks",
               "grad_sq_norm", ("theory_grad_sq_norm_null_mean",
                                "theory_ln_grad_sq_norm_mean_shift"), "log_mean",
               domain="hanin_nica", allowance="none",
               source="Hanin & Nica 2019: E ln ||dL/dW||^2 = ln E_inf ||dL/dW||^2 + shift, "
                      "~ -5 beta/2 per ln ||a||^2 plus the readout's ln chi^2 term "
                      "(gradstats.theory.finite_width.ln_grad_sq_norm_mean_shift)",
               needs="a point in the Hanin-Nica setting (relu, Gaussian or orthogonal, no bias, "
                     "batch_size 1, teacher zero, sphere data)"),
    Comparison("preact_kurtosis", "excess kurtosis of one pre-activation unit over networks "
               "(pooled over units and seeds)", "forward_m4",
               ("theory_preact_kurtosis", "theory_preact_kurtosis_sd"), "pooled_kurtosis",
               domain="preact_kurtosis", layers="hidden", allowance="none",
               max_detectable=MAX_RATIO - 1,
               source="Roberts, Yaida & Hanin 2022 four-point vertex: 15 (l-1)/n relu, "
                      "6 (l-1)/n linear; exact 3 [(1 + r/n)^(l-1) - 1] "
                      "(gradstats.theory.finite_width.preact_excess_kurtosis_exact)",
               needs="a point in its setting (plain relu/linear MLP, Gaussian, no bias, "
                     "batch_size 1, sphere data) and forward_m4 (gradstats >= this version)"),
    Comparison("full_loss_lazy", "training loss vs the linearized network (lazy regime)",
               "full_loss", "theory_full_loss_lazy", "log_ratio", steps="trained",
               domain="lazy", allowance="lazy_loss",
               source="Lee et al. 2019: wide networks train as their linearization",
               needs="training steps (steps > 0) and n_train <= 2048"),
    Comparison("batch_noise", "tr Sigma from one minibatch (paired sub-batch slope) vs the "
               "whole training set", "full_noise_trace_unbiased", "full_noise_trace", "log_ratio",
               domain="any", allowance="none",
               source="sampling without replacement: E||g_b||^2 = ||G||^2 + "
                      "(N-b)/(b(N-1)) tr Sigma (docs/noise_scale.md); at step 0 the minibatch "
                      "is a uniform subset (later ones depend on the epoch so far)",
               needs='measure = ["per_example", "full_batch"]'),
    Comparison("ntk_init_exponent", "width exponent of the empirical-vs-analytic NTK error",
               "theory_ntk_init_rel_err", "", "exponent", allowance="exponent",
               max_detectable=EXPONENT_MAX_DETECTABLE, exponent=-0.5,
               source="NTK fluctuations ~ width^-1/2", needs="at least 3 widths"),
    Comparison("ntk_change_exponent", "width exponent of the NTK change during training",
               "ntk_rel_change", "", "exponent", steps="last", domain="ntk_change",
               allowance="exponent", max_detectable=EXPONENT_MAX_DETECTABLE, exponent=-1.0,
               source="lazy training: NTK change ~ width^-1 (Dyer & Gur-Ari 2019, Huang & Yau "
                      "2019; Lee et al. 2019's width^-1/2 is a bound)",
               needs="at least 3 widths inside the domain (relu: >= 1024, smooth: >= 128) "
                     "and training steps"),
    _coord_row("preact_change_input_exponent", "the input layer's pre-activation change",
               "preact_change_rms", "input"),
    _coord_row("preact_change_hidden_exponent", "the hidden layers' pre-activation change "
               "(geometric mean over layers 2..depth)", "preact_change_rms", "hidden"),
    _coord_row("output_change_exponent", "the output change", "output_change_rms", "output"),
    _coord_row("output_feature_change_exponent", "the output change from the features "
               "moving, W_out(0) Delta a_L,", "output_change_feature_rms", "output_feature"),
    _coord_row("output_readout_change_exponent", "the output change from the readout's own "
               "update", "output_change_readout_rms", "output_readout"),
    Comparison("bn_grad_sq_norm_rate", "growth of grad_sq_norm per layer toward the input "
               f"with batch norm (layers {BN_FIRST_LAYER}..depth-{BN_READOUT_GAP})",
               "grad_sq_norm", "theory_bn_ln_growth", "difference", domain="batch_norm",
               layers="window", allowance="bn_width", first_layer=BN_FIRST_LAYER,
               readout_gap=BN_READOUT_GAP, max_detectable=BN_RATE_MAX_DETECTABLE,
               batch_norm=True,
               source="Yang et al. 2019 mean field of batch norm: lambda(B) "
                      "(gradstats.theory.batchnorm, docs/batchnorm.md)",
               needs='norm = "batch" points'),
    # --- seed-paper claims (issue 19; gradstats.results.claims): H0 = the paper's claim -----
    Comparison("xie_dimwise_power_law", "Xie et al.: dimension-wise gradients usually pass "
               "the power-law test (paper protocol)", "xie_dimwise_pass_paper", "", "claim",
               steps="training", domain="any", allowance="none", max_detectable=CLAIM_RATE_DETECTABLE,
               source=XIE_SOURCE + "; protocol: free-xmin KS fit, d_KS <= 1.358/sqrt(n_tail); "
                      "pass rate >= 1/2 (binomial, layers and seeds pooled)",
               needs=XIE_NEEDS),
    Comparison("xie_dimwise_power_law_strict", "Xie et al.: dimension-wise gradients usually "
               "pass the power-law test (the package's strict test)", "xie_dimwise_pass_strict",
               "", "claim", steps="training", domain="any", allowance="none",
               max_detectable=CLAIM_RATE_DETECTABLE,
               source=XIE_SOURCE + "; protocol: tail >= 10%, CSN bootstrap p >= 0.1; pass rate "
                      ">= 1/2", needs=XIE_NEEDS),
    Comparison("xie_dimwise_power_law_n", "Xie et al.: dimension-wise gradients usually pass "
               "the power-law test (paper protocol, critical value of the whole sample)",
               "xie_dimwise_pass_paper_n", "", "claim", steps="training", domain="any",
               allowance="none", max_detectable=CLAIM_RATE_DETECTABLE,
               source=XIE_SOURCE + "; protocol: free-xmin KS fit, d_KS <= 1.358/sqrt(n); pass "
                      "rate >= 1/2", needs=XIE_NEEDS),
    Comparison("xie_iterwise_not_power_law", "Xie et al.: iteration-wise gradients usually fail "
               "the power-law test (paper protocol)", "xie_iterwise_pass_paper", "", "claim",
               steps="training", domain="any", allowance="none", max_detectable=CLAIM_RATE_DETECTABLE,
               source=XIE_SOURCE + "; protocol as xie_dimwise_power_law; pass rate <= 1/2",
               needs=XIE_NEEDS),
    Comparison("xie_noise_not_power_law", "Xie et al.: minibatch gradient noise (iteration-wise) "
               "usually fails the power-law test (paper protocol)",
               "xie_iterwise_noise_pass_paper", "", "claim", steps="training", domain="any",
               allowance="none", max_detectable=CLAIM_RATE_DETECTABLE,
               source=XIE_SOURCE + "; protocol as xie_dimwise_power_law; pass rate <= 1/2",
               needs=XIE_NEEDS),
    Comparison("xie_iterwise_not_power_law_n", "Xie et al.: iteration-wise gradients usually "
               "fail the power-law test (paper protocol, critical value of the whole sample)",
               "xie_iterwise_pass_paper_n", "", "claim", steps="training", domain="any",
               allowance="none", max_detectable=CLAIM_RATE_DETECTABLE,
               source=XIE_SOURCE + "; protocol as xie_dimwise_power_law_n; pass rate <= 1/2",
               needs=XIE_NEEDS),
    Comparison("lee_directions_uniformize", "Lee et al.: minibatch gradient directions grow more "
               "uniform over SGD (kappa falls, first to last recorded step)",
               "minibatch_dir_kappa", "", "claim", steps="last", domain="any", allowance="none",
               max_detectable=math.log(MAX_RATIO),
               source=LEE_SOURCE + "; per seed ln(kappa_last / kappa_first) <= 0, one-sided t "
                      "over seeds", needs=LEE_NEEDS),
    Comparison("lee_stochasticity_follows_directions", "Lee et al.: gradient stochasticity "
               "correlates more with directional uniformity than with norm stochasticity",
               "gradient_stochasticity", "", "claim", steps="last", domain="any",
               allowance="none", max_detectable=CLAIM_CORR_DETECTABLE,
               source=LEE_SOURCE + "; per seed corr(GS, 1/kappa) - corr(GS, norm CV) over the "
                      "recorded steps >= 0, one-sided t over seeds", needs=LEE_NEEDS),
    _limit_row("grad_sq_norm", "weight-gradient norm given the measured readout gradient"),
    _limit_row("bias_grad_sq_norm", "bias-gradient norm given the measured readout gradient"),
    _limit_row("backward_q", "backward signal given the measured readout signal",
               layers="hidden"),
)


def by_name(name: str) -> Comparison:
    """The declared comparison called ``name``."""
    for comparison in COMPARISONS:
        if comparison.name == name:
            return comparison
    raise KeyError(f"no comparison {name!r}; known: {', '.join(c.name for c in COMPARISONS)}")


def allowance_text(comparison: Comparison) -> str:
    """The allowance of a comparison in words (docs and table)."""
    return {
        "finite_width": f"{BETA_COEF:g} beta + {WIDTH_COEF:g}/width in ln"
                        + (" + NTK change at step > 0" if comparison.steps == "training" else ""),
        "rate": f"2 ({BETA_COEF:g} beta + {WIDTH_COEF:g}/width) / layers spanned, per layer",
        "bn_width": f"{BN_WIDTH_COEF:g}/width per layer",
        "lazy_loss": "NTK change x |ln(L_0 / L_t)|, at most 0.5",
        "width_limit": "abs(slope on 1/width) / largest width, in ln",
        "exponent": f"+-{EXPONENT_ALLOWANCE:g}",
        "coord_exponent": f"+-{COORD_EXPONENT_ALLOWANCE:g}",
        "none": "none",
    }[comparison.allowance]


def domain_text(comparison: Comparison) -> str:
    """The validity domain of a comparison in words (docs and table)."""
    text = {"infinite_width": f"(effective) depth/width <= {comparison.beta_max:g}, width >= "
                              f"{WIDTH_MIN}",
            "hanin_nica": "plain relu MLP, Gaussian or orthogonal, no bias, batch 1, target 0",
            "preact_kurtosis": "plain MLP, piecewise-linear activation, Gaussian, no bias, "
                               "batch 1, sphere data, step 0; hidden layers 2..depth with "
                               f"predicted kurtosis <= {KURTOSIS_MAX:g}",
            "lazy": f"NTK change <= {LAZY_NTK_CHANGE_MAX:g}",
            "ntk_change": f"NTK change <= {LAZY_NTK_CHANGE_MAX:g}, ntk parameterization, sgd, width >= "
                          f"{NTK_CHANGE_WIDTH_MIN['piecewise']} (piecewise-linear) or "
                          f">= {NTK_CHANGE_WIDTH_MIN['smooth']} (smooth)",
            "coord": "step 1 (one update from init), plain MLP",
            "outputs": f"(effective) depth/width <= {BETA_MAX_OUTPUTS:g}",
            "mlp": "plain MLPs (no residual, no norm)",
            "batch_norm": f"norm = batch, no residual, relu or tanh (linear: B <= "
                          f"{BN_LINEAR_BATCH_MAX}), B >= {BN_BATCH_MIN}, width >= {BN_WIDTH_MIN}, "
                          f"Gaussian init, mse, depth >= "
                          f"{BN_FIRST_LAYER + BN_READOUT_GAP + BN_MIN_FIT_LAYERS - 1}, step 0",
            "any": "any network"}[comparison.domain]
    if comparison.steps == "training" and comparison.domain == "infinite_width":
        text += f"; step > 0: NTK change <= {LAZY_NTK_CHANGE_MAX:g}"
    if not comparison.batch_norm:
        text += "; not batch norm"
    return text
