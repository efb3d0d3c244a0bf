"""Where the torch families compute: auto, cpu, cuda, mps, and a named device that is absent."""

import pytest
import torch

from mnist_pipeline.tasks.core import devices


def test_auto_takes_the_best_device_present_and_cpu_is_always_there(monkeypatch):
    assert devices.resolve("cpu") == "cpu" and devices.describe("cpu") == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "mps" if devices._mps_available() else "cpu"
    assert devices.resolve("auto") == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert devices.resolve("auto") == "mps"  # CUDA first, then MPS, as pytorch/examples picks


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_named_device_that_is_absent_is_one_clear_line():
    with pytest.raises(devices.DeviceUnavailable) as caught:
        devices.resolve("cuda")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("device 'cuda' is not available on this machine (")
    assert "use --device cpu, or auto" in message
