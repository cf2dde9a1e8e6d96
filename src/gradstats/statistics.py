"""The registry of statistics: each one's name, dims, long_name and units, declared once.

`simulate` records statistics under these names, `theory` predicts them under the same
names, `results.compare` pairs the two by walking this registry. No torch, no jax here.

``dims`` lists the statistic's own dims beyond the sweep axes and ``seed`` (which every
simulated statistic has): typically ``step`` and ``layer``.

``kind`` says where a variable comes from: ``measured`` (an estimator of the network),
``input`` (what the run recorded so that theory can be evaluated on exactly the network that
was measured: minibatch indices, outputs, readout gradients), or ``prediction`` (a theory
value computed on the worker right after the point, from the spec and the recorded inputs,
per seed: `gradstats.predictions`). `gradstats.comparisons` pairs measurements with
predictions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Statistic:
    """A recorded quantity: ``dims`` beyond sweep axes and seed; ``theory`` if predicted."""

    name: str
    dims: tuple[str, ...]
    long_name: str
    units: str
    description: str
    theory: bool = False
    kind: str = "measured"

    def attrs(self) -> dict[str, str]:
        """xarray variable attrs (``long_name``, ``units``, ``description``)."""
        return {"long_name": self.long_name, "units": self.units, "description": self.description}


REGISTRY: dict[str, Statistic] = {}


def register(stat: Statistic) -> Statistic:
    """Add ``stat`` to the registry; a name may be declared once only."""
    if stat.name in REGISTRY:
        raise ValueError(f"statistic {stat.name!r} is already registered")
    REGISTRY[stat.name] = stat
    return stat


def get(name: str) -> Statistic:
    """The registered statistic called ``name`` (KeyError naming the known ones otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown statistic {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


_SL = ("step", "layer")

# --- spine: recorded at every recorded step of every point -------------------------------
for _s in (
    Statistic("grad_sq_norm", _SL, "squared norm of weight gradient", "1",
              "||dL/dW_l||_F^2 of the minibatch loss wrt layer l's weight matrix", theory=True),
    Statistic("bias_grad_sq_norm", _SL, "squared norm of bias gradient", "1",
              "||dL/db_l||^2 of the minibatch loss wrt layer l's bias (NaN without bias)",
              theory=True),
    Statistic("forward_q", _SL, "mean squared pre-activation", "1",
              "mean over units and examples of h_l^2 (the length map q_l)", theory=True),
    Statistic("forward_m4", _SL, "mean fourth power of pre-activation", "1",
              "mean over units and examples of h_l^4; with forward_q, the pooled excess "
              "kurtosis mean_seeds m4 / (mean_seeds forward_q)^2 - 3 of one unit over networks",
              theory=True),
    Statistic("backward_q", _SL, "mean squared backward signal", "1",
              "mean over units and examples of (d loss_i / d h_l,i)^2, loss_i the per-example "
              "loss", theory=True),
    Statistic("active_fraction", _SL, "fraction of active units", "1",
              "fraction of (unit, example) pairs with |phi'(h_l)| > 1e-6 (hidden layers; "
              "1 for the linear readout)"),
    Statistic("weight_sq_norm", _SL, "squared norm of weights", "1",
              "||W_l||_F^2 of the effective weight (sigma_w/sqrt(fan_in) W under ntk)",
              theory=True),
    Statistic("batch_loss", ("step",), "minibatch loss", "1",
              "minibatch training loss at the recorded step, before the update", theory=True),
    Statistic("full_loss", ("step",), "full-batch training loss", "1",
              "loss over the whole training set at the recorded step"),
    Statistic("accuracy", ("step",), "training accuracy", "1",
              "fraction of the minibatch classified correctly (cross_entropy; NaN for mse)"),
    Statistic("output_mean_sq", ("step",), "mean squared network output", "1",
              "mean over examples and outputs of f(x)^2 on the minibatch", theory=True),
    Statistic("precision_loss", _SL, "float32 underflow error", "1",
              "max relative change of layer l's pre-activations, backward signals, weight "
              "and bias gradients when the minibatch step is recomputed in float64 (same "
              "weights; grad_sq_norm is then off by at most 2 x + x^2), "
              "measured only when a value of the step is subnormal or a layer's weight "
              "gradient is all 0 (else 0); > 1e-4 means the layer's statistics lost "
              "precision to underflow (float32 round-off alone stays below ~depth * 6e-8); "
              "NaN for float64 runs showing underflow (no wider reference) and non-finite steps"),
    Statistic("diverged", (), "diverged", "1",
              "1 if the loss or a gradient became inf/nan (values kept as they were), else 0"),
    Statistic("diverged_step", (), "step of divergence", "step",
              "first step with a non-finite value (-1 if none)"),
    Statistic("wall_time", (), "compute time", "s", "seconds spent computing the point"),
):
    register(_s)

# --- per-example engine (issue 4) ---------------------------------------------------------
# Estimators "per_example", "full_batch" and "ntk" (gradstats.simulate.engine_estimators).
# Sigma is the per-example gradient covariance over all parameters of the minibatch:
# 1/B sum_i (g_i - gbar)(g_i - gbar)^T. The full-data quantities (docs/noise_scale.md): G the
# mean gradient over the N = n_train training examples, Sigma_N their covariance (1/N);
# minibatches are drawn without replacement when B <= N (with replacement when B > N), so
# E||g_b||^2 = ||G||^2 + c_b tr Sigma_N with c_b = (N-b)/(b(N-1)) (1/b with replacement).
_B1 = "NaN for batch_size 1 (one example has no spread)"
_UNBIASED = ("unbiased minibatch estimate (McCandlish et al. 2018, app. A, with the "
             "finite-population factor (N-B)/(N-1)); ")
for _s in (
    Statistic("per_example_grad_sq_norm", ("step", "layer", "sample"),
              "per-example squared norm of weight gradient", "1",
              "||d loss_i / dW_l||_F^2 wrt the raw W_l for each minibatch example i"),
    Statistic("per_example_bias_grad_sq_norm", ("step", "layer", "sample"),
              "per-example squared norm of bias gradient", "1",
              "||d loss_i / db_l||^2 for each minibatch example i (NaN without bias)"),
    Statistic("grad_noise_trace", ("step",), "trace of gradient noise covariance", "1",
              "tr Sigma, Sigma = 1/B sum_i (g_i - gbar)(g_i - gbar)^T of per-example "
              "gradients g_i over all parameters, gbar the minibatch mean gradient; values "
              f"within float round-off of 0 are 0; {_B1}. Biased for tr Sigma_N: E = "
              "(B-1)/B N/(N-1) tr Sigma_N (without the N/(N-1) when B > N); see "
              "full_noise_trace_unbiased"),
    Statistic("noise_eigenvalues", ("step", "rank"), "gradient noise covariance eigenvalues",
              "1", "eigenvalues of Sigma in descending order; rank dim has length batch_size "
              f"(rank <= B-1, trailing values are 0; values within round-off of 0 are 0); {_B1}"),
    Statistic("grad_noise_scale", ("step",), "simple gradient noise scale (minibatch plug-in)",
              "examples", "tr Sigma / ||gbar||^2 from one minibatch, gbar the minibatch mean "
              "gradient. Biased low: E ||gbar||^2 = ||G||^2 + c_B tr Sigma_N, so its mean is "
              "about (B-1) B_true / (B + B_true) and it saturates near B; for B_simple take "
              "mean(full_noise_trace_unbiased) / mean(full_grad_sq_norm_unbiased) over seeds "
              f"or steps (docs/noise_scale.md). NaN when all gradients are 0; {_B1}"),
    Statistic("layer_grad_noise_trace", ("step", "layer"),
              "trace of layer gradient noise covariance", "1",
              "tr Sigma_l of layer l's parameters (weight and bias); sums over layers to "
              f"grad_noise_trace; {_B1}"),
    Statistic("layer_grad_noise_scale", ("step", "layer"),
              "layer gradient noise scale (minibatch plug-in)", "examples",
              "tr Sigma_l / ||gbar_l||^2 for layer l's parameters (weight and bias); biased "
              f"like grad_noise_scale; NaN when the layer's gradients are all 0; {_B1}"),
    Statistic("full_noise_trace_unbiased", ("step",), "unbiased estimate of tr Sigma_N", "1",
              _UNBIASED + "(N-1)/N * 1/(B-1) sum_i ||g_i - gbar||^2 (without the (N-1)/N when "
              "B > N). Equals the slope of subbatch_grad_sq_norm vs c_b (the paired "
              f"batch-noise slope); {_B1}"),
    Statistic("full_grad_sq_norm_unbiased", ("step",), "unbiased estimate of ||G||^2", "1",
              _UNBIASED + "||gbar||^2 - c_B full_noise_trace_unbiased, G the mean gradient over "
              "the training set; the intercept of subbatch_grad_sq_norm vs c_b; can be "
              f"negative when the noise dominates; exact at B = N; {_B1}"),
    Statistic("layer_full_noise_trace_unbiased", ("step", "layer"),
              "unbiased estimate of tr Sigma_N of a layer", "1",
              f"full_noise_trace_unbiased of layer l's parameters (weight and bias); {_B1}"),
    Statistic("layer_full_grad_sq_norm_unbiased", ("step", "layer"),
              "unbiased estimate of ||G_l||^2", "1",
              f"full_grad_sq_norm_unbiased of layer l's parameters (weight and bias); {_B1}"),
    Statistic("subbatch_grad_sq_norm", ("step", "subbatch"),
              "mean squared norm of sub-batch gradients (paired)", "1",
              "mean of ||g_S||^2 over all sub-batches S of size b = subbatch_size of the "
              "minibatch, exactly m2/b + (1 - 1/b) p (m2 the mean diagonal, p the mean "
              "off-diagonal of the per-example Gram): unbiased for E||g_b||^2 at every b <= B "
              "on the same network. Coordinate j is b = 2^j; NaN beyond B"),
    Statistic("subbatch_size", ("subbatch",), "sub-batch size", "examples",
              "b = 2^j for subbatch coordinate j (powers of two <= batch_size)"),
    Statistic("full_grad_sq_norm", ("step",), "squared norm of full-data mean gradient", "1",
              "||G||^2, G = (1/N) sum_i g_i over all N training examples and all parameters "
              "(exact, float64 copy of the network)"),
    Statistic("full_noise_trace", ("step",), "trace of full-data gradient noise covariance",
              "1", "tr Sigma_N = (1/N) sum_i ||g_i - G||^2 over all N training examples "
              "(exact, float64 copy of the network)"),
    Statistic("full_noise_scale", ("step",), "true simple gradient noise scale", "examples",
              "B_simple = tr Sigma_N / ||G||^2 over the whole training set (exact; NaN when "
              "G = 0)"),
    Statistic("layer_full_grad_sq_norm", ("step", "layer"),
              "squared norm of full-data mean gradient of a layer", "1",
              "||G_l||^2 of layer l's parameters (weight and bias), exact over the training set"),
    Statistic("layer_full_noise_trace", ("step", "layer"),
              "trace of full-data noise covariance of a layer", "1",
              "tr Sigma_N of layer l's parameters (weight and bias), exact over the training set"),
    Statistic("ntk_rel_change", ("step",), "relative change of empirical NTK", "1",
              "||Theta_t - Theta_0||_F / ||Theta_0||_F of the empirical NTK (traced over "
              "outputs) on a fixed probe batch: the first min(64, n_train) training inputs; "
              "computed on a float64 copy of the network; NaN when Theta_0 = 0"),
    Statistic("ntk_trace", ("step",), "trace of empirical NTK", "1",
              "sum over the probe batch of Theta_t(x, x), traced over outputs (float64)"),
):
    register(_s)

# --- updates (measure = ["updates"]): how far training moved the network, on a fixed probe
# batch of min(64, n_train) training inputs drawn from the estimator's own stream; weights are
# the effective ones (multiplier x raw W), in float64. "The update" at a recorded step t is
# W(t) - W(t'), t' the previous recorded step (the last step's update when the recorded steps
# are consecutive); NaN at step 0.
for _s in (
    Statistic("preact_change_rms", _SL, "rms pre-activation change since init", "1",
              "rms over units and probe examples of z_l(t) - z_l(0), z_l the output of dense "
              "layer l (the readout's is the network output)", theory=True),
    Statistic("output_change_rms", ("step",), "rms output change since init", "1",
              "rms over outputs and probe examples of f(t) - f(0)", theory=True),
    Statistic("output_change_feature_rms", ("step",), "output change from the features", "1",
              "rms over outputs and probe examples of W_out(0) (a_L(t) - a_L(0)): the features "
              "moving, seen through the initial readout (effective weights)", theory=True),
    Statistic("output_change_readout_rms", ("step",), "output change from the readout", "1",
              "rms of (W_out(t) - W_out(0)) a_L(t) + m_b (b(t) - b(0)): the readout's own "
              "update; with output_change_feature_rms it sums to f(t) - f(0) exactly",
              theory=True),
    Statistic("update_fro_sq", _SL, "squared norm of the weight update", "1",
              "||Delta W_l||_F^2 of the effective weight since the previous recorded step"),
    Statistic("update_op_norm", _SL, "operator norm of the weight update", "1",
              "||Delta W_l||_op (power iteration, at most 64 rounds, stopping once converged to "
              "1e-10, from a start drawn from the "
              "estimator's stream: a lower bound, exact for low-rank updates)"),
    Statistic("weight_op_norm", _SL, "operator norm of the weight", "1",
              "||W_l||_op of the effective weight at the step (power iteration, as "
              "update_op_norm)"),
    Statistic("update_alignment", _SL, "alignment of the update with its input", "1",
              "||A_{l-1} Delta W_l^T||_F / (||Delta W_l||_op ||A_{l-1}||_F), A_{l-1} the probe "
              "inputs of layer l at the step: 1 when every input lies in the top singular "
              "direction, ~ 1/sqrt(fan_in) for an unrelated input"),
    # Adam/AdamW only (NaN otherwise): the step about to be taken at the recorded step,
    # W -= lr u with u = m_hat / (sqrt(v_hat) + eps) (after the step's gradient g enters the
    # moments), against g, the raw minibatch gradient of the weight
    Statistic("adam_update_ratio", _SL, "Adam step / raw gradient (norms)", "1",
              "||u_l||_F / ||g_l||_F: the per-layer gain of Adam's preconditioning over SGD at "
              "the same rate (sqrt(nonzero entries) / ||g||_F at step 0, where u = sign g)"),
    Statistic("adam_sign_agreement", _SL, "Adam step sign agreement with the gradient", "1",
              "fraction of entries with g != 0 where sign u = sign g (1 at step 0; momentum "
              "and weight decay lower it)"),
    Statistic("adam_second_moment_median", _SL, "median Adam preconditioner scale", "1",
              "median over entries of sqrt(v_hat_l), the per-entry scale dividing the step"),
    Statistic("adam_second_moment_log_sd", _SL, "spread of Adam's preconditioner", "1",
              "standard deviation over entries of ln sqrt(v_hat_l): 0 when Adam is SGD with one "
              "rescaled rate per layer; its spread is how far the preconditioner is from that"),
):
    register(_s)

# --- gradient distributions (issue 5) -----------------------------------------------------
# Estimators "distribution" and "directions" (gradstats.simulate.distribution_estimators);
# definitions in gradstats.simulate.distributions. Kurtosis is Pearson's (normal = 3).
_DIST_SAMPLES = {
    "dimwise": "entries of the minibatch gradient dL/dW_l (one step)",
    "noise": "entries of the gradient noise dL/dW_l - dL_full/dW_l (full batch = training set); "
             "NaN where the noise is within float round-off of 0 (identical examples)",
}
_DIST_FIELDS = {
    "kurtosis": ("Pearson kurtosis", "1", "E[(x-m)^4]/var^2 (normal = 3)"),
    "skewness": ("skewness", "1", "E[(x-m)^3]/var^1.5"),
    "zero_fraction": ("fraction of exact zeros", "1", "fraction of entries exactly 0"),
    "normality_p": ("normality p-value", "1", "D'Agostino-Pearson omnibus p"),
    "stable_alpha": ("alpha-stable tail index", "1",
                     "Mohammadi et al. (2015) estimator, blocks of sqrt(n), clipped to (0, 2]; "
                     "NaN for all-zero samples and when 1/alpha <= 0"),
    "powerlaw_alpha": ("power-law exponent", "1",
                       "CSN MLE density exponent alpha of |x| above xmin (tail >= 10% of sample)"),
    "powerlaw_p": ("power-law goodness-of-fit p", "1",
                   "CSN semi-parametric bootstrap p (100 reps; < 0.1 rejects the power law)"),
    "powerlaw_n_tail": ("power-law tail size", "1", "points above xmin in the fitted sample"),
    "powerlaw_lr_lognormal": ("power law vs lognormal LR", "1",
                              "Vuong normalized log-likelihood ratio (> 0 favours power law)"),
    "powerlaw_lr_exponential": ("power law vs exponential LR", "1",
                                "Vuong normalized log-likelihood ratio (> 0 favours power law)"),
}
for _p, _what in _DIST_SAMPLES.items():
    for _f, (_ln, _u, _d) in _DIST_FIELDS.items():
        register(Statistic(f"{_p}_{_f}", _SL, f"{_p} gradient {_ln}", _u, f"{_d}; sample: {_what}"))
for _f in ("kurtosis", "zero_fraction", "powerlaw_alpha", "powerlaw_p"):
    _ln, _u, _d = _DIST_FIELDS[_f]
    register(Statistic(f"dimwise_net_{_f}", ("step",), f"whole-network gradient {_ln}", _u,
                       f"{_d}; sample: all weight-gradient entries of all layers"))
for _s in (
    Statistic("iterwise_kurtosis", ("layer",), "iteration-wise gradient kurtosis", "1",
              "median over tracked coordinates of the Pearson kurtosis over recorded steps"),
    Statistic("iterwise_normal_reject_fraction", ("layer",),
              "iteration-wise normality rejections", "1",
              "fraction of tracked coordinates whose D'Agostino-Pearson p < 0.05 over steps"),
    Statistic("iterwise_powerlaw_pass_fraction", ("layer",), "iteration-wise power-law passes",
              "1", "fraction of tracked coordinates whose |gradient| over steps passes the CSN "
              "bootstrap at 0.1 (NaN with < 50 recorded steps)"),
    Statistic("iterwise_n_steps", (), "recorded steps for iteration-wise statistics", "1",
              "number of recorded steps the iteration-wise statistics used"),
    Statistic("example_norm_cv", ("step",), "per-example gradient norm CV", "1",
              "std/mean of the B per-example gradient norms (all parameters); NaN for "
              "batch_size 1 and all-zero gradients"),
    Statistic("minibatch_norm_cv", ("step",), "minibatch gradient norm CV", "1",
              "norm stochasticity: std/mean of the norms of 16 minibatch gradients (NaN when "
              "all are 0)"),
    Statistic("gradient_stochasticity", ("step",), "gradient stochasticity", "1",
              "sqrt(mean ||g_i - g_bar||^2)/||g_bar|| over 16 minibatch gradients g_i (0 within "
              "round-off; inf when g_bar = 0 with spread, NaN when all are 0)"),
    Statistic("noise_spectrum_exponent", ("step",), "noise covariance spectrum exponent", "1",
              "s in lambda_k ~ k^-s for the minibatch noise covariance eigenvalues, ranks "
              "1..ceil((B-1)/2), OLS in log-log"),
    Statistic("noise_spectrum_exponent_stderr", ("step",), "stderr of spectrum exponent", "1",
              "OLS standard error of noise_spectrum_exponent (iid log-residuals)"),
):
    register(_s)
for _p, _what in (("example_dir", "the B per-example gradient directions (NaN for batch_size 1"
                                 " and zero gradients)"),
                  ("minibatch_dir", "16 minibatch gradient directions (NaN for zero gradients)")):
    for _s in (
        Statistic(f"{_p}_r_bar", ("step",), "mean resultant length", "1",
                  f"||mean of unit vectors|| of {_what}"),
        Statistic(f"{_p}_kappa", ("step",), "vMF concentration (MLE)", "1",
                  f"kappa solving I_(d/2)/I_(d/2-1)(kappa) = r_bar for {_what}"),
        Statistic(f"{_p}_kappa_banerjee", ("step",), "vMF concentration (Banerjee)", "1",
                  f"r_bar (d - r_bar^2)/(1 - r_bar^2) for {_what}"),
        Statistic(f"{_p}_r_bar_uniform", ("step",), "mean resultant length, uniform", "1",
                  f"1/sqrt(n): rms r_bar of as many uniform directions as {_what}"),
        Statistic(f"{_p}_kappa_uniform", ("step",), "vMF concentration, uniform baseline", "1",
                  f"MLE kappa at r_bar = 1/sqrt(n) for {_what} (~ d/sqrt(n))"),
    ):
        register(_s)

# --- the seed papers' protocols (issue 19) ---------------------------------------------------
# Estimator "xie" (gradstats.simulate.paper_estimators); tests in gradstats.simulate.protocols.
_XIE_SAMPLES = {
    "dimwise": ("dimension-wise gradient", "entries of dL/dW_l of one minibatch (8 minibatches)"),
    "noise": ("dimension-wise gradient noise", "entries of dL/dW_l - dL_full/dW_l of one "
              "minibatch (8 minibatches)"),
    "iterwise": ("iteration-wise gradient", "one coordinate of dL/dW_l over 1000 minibatches at "
                 "the same parameters (16 coordinates per layer)"),
    "iterwise_noise": ("iteration-wise gradient noise", "the iteration-wise sample minus the "
                       "coordinate's full-batch gradient (16 coordinates per layer)"),
    "net": ("whole-network dimension-wise gradient", "all layers' weight-gradient entries of "
            "one minibatch (8 minibatches)"),
}
_XIE_PROTOCOLS = {
    "paper": "Xie et al.'s power-law test (free-xmin KS fit, d_KS <= 1.358/sqrt(n_tail))",
    "paper_n": "Xie et al.'s power-law test with the critical value of the whole sample "
               "(d_KS <= 1.358/sqrt(n))",
    "strict": "the package's power-law test (tail >= 10% of the sample, CSN bootstrap p >= 0.1)",
    "gaussian": "the Gaussian KS test (d_KS <= 1.358/sqrt(n) against the fitted normal)",
}
for _k, (_ln, _what) in _XIE_SAMPLES.items():
    for _p, _how in _XIE_PROTOCOLS.items():
        register(Statistic(f"xie_{_k}_pass_{_p}", ("step",) if _k == "net" else _SL,
                           f"{_ln}: {_p} pass rate", "1",
                           f"fraction of samples not rejected by {_how}; sample: {_what}"))
for _s in (
    Statistic("xie_dimwise_tests", ("step",), "dimension-wise samples per step", "1",
              "minibatches whose gradient entries are tested (per layer and for the network)"),
    Statistic("xie_iterwise_tests", ("step",), "iteration-wise samples per step", "1",
              "coordinates per layer whose values over minibatches are tested"),
    Statistic("xie_spectrum_s", ("step",), "gradient-noise covariance spectrum exponent", "1",
              "s in lambda_k ~ k^-s, OLS over the upper half of the nonzero eigenvalues of the "
              "per-example gradient covariance of 512 training examples (all parameters)"),
    Statistic("xie_spectrum_s_stderr", ("step",), "stderr of xie_spectrum_s", "1",
              "OLS standard error (iid log-residuals: optimistic)"),
    Statistic("xie_spectrum_alpha", ("step",), "power-law density exponent of the eigenvalues",
              "1", "free-xmin MLE alpha of the eigenvalues (a rank-plot slope s gives "
              "alpha = 1 + 1/s)"),
    Statistic("xie_spectrum_pass_paper", ("step",), "eigenvalues pass Xie et al.'s test", "1",
              "1 when the eigenvalues pass the paper protocol (d_KS <= 1.358/sqrt(n_tail))"),
    Statistic("xie_spectrum_pass_paper_n", ("step",), "eigenvalues pass Xie et al.'s test (n)",
              "1", "1 when the eigenvalues pass with the whole spectrum's critical value"),
):
    register(_s)

# --- theory inputs and per-seed predictions (issue 11) -------------------------------------
# Recorded at every recorded step so that predictions are conditioned on the measured network
# (`gradstats.simulate.training`), and predictions made from them on the worker
# (`gradstats.predictions`). ``output`` runs over the readout units.
_SSO = ("step", "sample", "output")
for _s in (
    Statistic("batch_index", ("step", "sample"), "minibatch indices", "1",
              "indices into the training set of the minibatch used at the recorded step",
              kind="input"),
    Statistic("batch_output", _SSO, "network outputs on the minibatch", "1",
              "f(x_i) on the recorded step's minibatch, before the update", kind="input"),
    Statistic("batch_grad_output", _SSO, "readout gradient on the minibatch", "1",
              "dL/df(x_i) of the minibatch loss L = mean_i l_i (carries the 1/B)", kind="input"),
):
    register(_s)

_GIVEN_G = ("given the measured readout gradient g = dL/df of this step's minibatch, with the "
            "analytic per-layer NTK of that minibatch at init (at step > 0: the lazy-regime "
            "prediction, the kernel frozen at init)")
for _s in (
    Statistic("theory_grad_sq_norm", _SL, "theory: squared norm of weight gradient", "1",
              f"sum_k g_k^T Theta^W_l g_k, {_GIVEN_G}", kind="prediction"),
    Statistic("theory_bias_grad_sq_norm", _SL, "theory: squared norm of bias gradient", "1",
              f"sum_k g_k^T Theta^b_l g_k, {_GIVEN_G} (NaN without bias)", kind="prediction"),
    Statistic("theory_backward_q", _SL, "theory: mean squared backward signal", "1",
              "the measured readout signal mean_ik (B g_ik)^2 propagated down by "
              "sigma_w^2 E[phi'(h_l)^2] per layer (readout entry = measurement)", kind="prediction"),
    Statistic("theory_forward_q", ("layer",), "theory: mean squared pre-activation", "1",
              "mean over the step-0 minibatch of K_l(x_i, x_i) (NNGP diagonal)", kind="prediction"),
    Statistic("theory_weight_sq_norm", ("layer",), "theory: squared norm of weights", "1",
              "E||effective W_l||_F^2 = fan_out sigma_w^2 at init (exact)", kind="prediction"),
    Statistic("theory_grad_sq_norm_null_mean", ("layer",),
              "theory: mean of weight-gradient norm over outputs", "1",
              "E||dL/dW_l||^2 at init over f ~ GP(0, K) on the step-0 minibatch", kind="prediction"),
    Statistic("theory_grad_sq_norm_null_var", ("layer",),
              "theory: variance of weight-gradient norm over outputs", "1",
              "Var||dL/dW_l||^2 at init over f ~ GP(0, K) on the step-0 minibatch",
              kind="prediction"),
    Statistic("theory_output_mean_sq_null_mean", (), "theory: mean of mean squared output",
              "1", "E[mean_ik f_ik^2] at init over f ~ GP(0, K)", kind="prediction"),
    Statistic("theory_output_mean_sq_null_var", (), "theory: variance of mean squared output",
              "1", "Var[mean_ik f_ik^2] at init over f ~ GP(0, K)", kind="prediction"),
    Statistic("theory_batch_loss_null_mean", (), "theory: mean of minibatch loss", "1",
              "E[L] at init over f ~ GP(0, K) on the step-0 minibatch", kind="prediction"),
    Statistic("theory_batch_loss_null_var", (), "theory: variance of minibatch loss", "1",
              "Var[L] at init over f ~ GP(0, K) on the step-0 minibatch", kind="prediction"),
    Statistic("theory_nngp_whitened_output", ("sample", "output"),
              "step-0 outputs whitened by the NNGP kernel", "1",
              "z = Lambda^-1/2 V^T f over the eigenpairs of K with eigenvalue > 10 beta x max "
              "(beta = depth/width; the rest NaN): iid N(0, 1) under the infinite-width theory",
              kind="prediction"),
    Statistic("theory_ln_chi1", (), "theory: ln chi_1", "1/layer",
              "ln of chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] (fixed-point decay rate; plain "
              "MLPs only)",
              kind="prediction"),
    Statistic("theory_ntk_init_rel_err", (), "empirical vs analytic NTK at init", "1",
              "||Theta_emp - Theta||_F / ||Theta||_F on the first min(16, n_train) training "
              "inputs (per-output kernels)", kind="prediction"),
    Statistic("theory_product_bound", ("layer",), "theory: product bound on gradient norm", "1",
              "gradstats.theory.bounds.product_bound on the step-0 network and minibatch, "
              "raw-weight scale (bounds sqrt(grad_sq_norm) at step 0; plain MLPs only)",
              kind="prediction"),
    Statistic("theory_relu_masked_bound", ("layer",), "theory: relu masked product bound", "1",
              "gradstats.theory.bounds.relu_masked_bound on the step-0 network (relu plain "
              "MLPs only)",
              kind="prediction"),
    Statistic("theory_ln_grad_sq_norm_var", ("layer",),
              "theory: variance of ln grad_sq_norm over networks", "1",
              "Hanin-Nica finite-width law (relu, one example, target 0): "
              "gradstats.theory.finite_width.ln_grad_sq_norm_variance", kind="prediction"),
    Statistic("theory_ln_grad_sq_norm_kurtosis", ("layer",),
              "theory: excess kurtosis of ln grad_sq_norm over networks", "1",
              "4th cumulant / variance^2 of ln grad_sq_norm in the Hanin-Nica setting "
              "(pi^4 from the readout's ln chi^2_1 plus the hidden layers' terms)",
              kind="prediction"),
    Statistic("theory_ln_grad_sq_norm_mean_shift", ("layer",),
              "theory: E ln grad_sq_norm - ln of its infinite-width mean", "1",
              "Hanin-Nica finite-width law (relu, one example, target 0, Gaussian or orthogonal "
              "weights): gradstats.theory.finite_width.ln_grad_sq_norm_mean_shift; add it to "
              "ln theory_grad_sq_norm_null_mean", kind="prediction"),
    Statistic("theory_grad_sq_norm_mean_factor", ("layer",),
              "theory: E grad_sq_norm / its infinite-width mean", "1",
              "finite-width correction to the mean squared gradient, prod (1 + 5/n_k) for "
              "Gaussian weights (gradstats.theory.finite_width.grad_sq_norm_mean_factor); "
              "multiply theory_grad_sq_norm_null_mean by it", kind="prediction"),
    Statistic("theory_preact_kurtosis", ("layer",),
              "theory: excess kurtosis of one pre-activation unit over networks", "1",
              "E[h_l^4]/E[h_l^2]^2 - 3 at one input of mean square 1 (sphere data): exact "
              "3 [prod_{k<l} (1 + r/n_k) - 1] for homogeneous activations without bias (r = 5 "
              "relu, 2 linear), else the leading-order four-point recursion (Roberts, Yaida & Hanin 2022; "
              "gradstats.theory.finite_width.preact_excess_kurtosis)", kind="prediction"),
    Statistic("theory_preact_kurtosis_sd", ("layer",),
              "theory: per-seed sd of the pooled-kurtosis influence value", "1",
              "exact sd over networks of (m4 - a)/b^2 - 2 a (m2 - b)/b^3 (m2 = forward_q, "
              "m4 = forward_m4, a, b their expectations): the null standard error x "
              "sqrt(seeds) of the pooled kurtosis (homogeneous activation, no bias, batch 1; "
              "gradstats.theory.finite_width.preact_moments_influence_sd)", kind="prediction"),
    Statistic("theory_full_loss_lazy_init", (), "theory: full-batch loss at init", "1",
              "training loss of the network at init (L_0 of the lazy-loss allowance)",
              kind="prediction"),
    Statistic("theory_full_loss_lazy", ("step",), "theory: full-batch loss of the linearized net",
              "1", "training loss of the network's linearization around init trained with the "
              "same minibatches, lr and momentum (empirical NTK of the measured network at init "
              "on the training set): the lazy-regime prediction", kind="prediction"),
):
    register(_s)

# --- batch normalization (issue 13) ---------------------------------------------------------
register(Statistic(
    "theory_bn_ln_growth", (), "theory: ln of the batch-norm gradient growth per layer",
    "1/layer", "ln lambda(B): ||dL/dW_l||^2 / ||dL/dW_{l+1}||^2 -> lambda(B) between hidden "
    "layers at infinite width with norm = 'batch' (Yang et al. 2019; "
    "gradstats.theory.batchnorm.bn_gradient_growth_rate; docs/batchnorm.md)", kind="prediction"))
