"""The validity preset: four settings (relu critical/ordered without bias, tanh critical/
chaotic with bias) over widths x depths spanning beta 0.008-0.5, in the settings where the
finite-width corrections the map uses exist."""

from gradstats.sweeps import expand, resolve_sweep
from gradstats.theory import validity


def test_validity_preset_spans_beta_and_the_correction_settings():
    points = expand(resolve_sweep("validity"))
    settings = {(p.arch.activation, p.arch.sigma_w2, p.arch.sigma_b2) for p in points}
    assert settings == {("relu", 2.0, 0.0), ("relu", 1.5, 0.0), ("tanh", 1.761, 0.05),
                        ("tanh", 3.0, 0.05)}
    betas = [validity.beta(p) for p in points]
    assert min(betas) < 0.01 and max(betas) >= 0.5
    relu = [p for p in points if p.arch.activation == "relu"]
    # the mean-factor and exact-kurtosis corrections need the Hanin-Nica / exact settings
    assert all(validity.hanin_nica(p) is None for p in relu)
    assert all(validity.preact_kurtosis(p) is None for p in relu)
    assert all(p.training.steps == 0 and p.training.batch_size == 1 for p in points)
    assert len(points) <= 2000  # a few minutes on two cores
