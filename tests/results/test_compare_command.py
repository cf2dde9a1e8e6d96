"""The compare summary's "detects" column: a ratio only for ratio tests."""

from types import SimpleNamespace

import pytest

from gradstats.comparisons import COMPARISONS
from gradstats.results.compare_command import RATIO_TESTS, _detects


@pytest.mark.parametrize("test, value, shown", [
    ("log_ratio", 1.67, "1.67x"), ("quadratic_form", 2.18, "2.18x"),
    ("exponent", 1.14, "±1.1"),  # an exponent's error is additive: "1.14x" meant nothing
    ("difference", 0.59, "±0.59"), ("pooled_kurtosis", 0.3, "±0.3"), ("ks", 0.24, "±0.24"),
    ("log_ratio", float("nan"), "-"),
])
def test_detects_shows_ratios_only_for_ratio_tests(test, value, shown):
    assert _detects(SimpleNamespace(test=test, detectable=value)) == shown


def test_every_declared_test_is_classified():
    """A new ratio test must be added to RATIO_TESTS or its detectable error prints as ±."""
    ratio_like = {c.test for c in COMPARISONS if c.test.startswith("log_")} | {"quadratic_form",
                                                                              "chi2_whitened"}
    assert ratio_like <= set(RATIO_TESTS)
