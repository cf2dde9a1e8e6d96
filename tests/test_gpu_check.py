"""benchmarks/gpu_check.py without a GPU: a clear message, exit 0, nothing written."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the check would run")
def test_without_a_gpu_it_says_so_and_exits_cleanly(monkeypatch, capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "RESULTS_gpu.md"
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--out", str(out)])
    assert module.main() == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    assert not out.exists()
