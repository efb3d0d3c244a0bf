"""Where the torch families compute: the CPU, a CUDA GPU or Apple's MPS, as pytorch/examples picks.

``auto`` takes CUDA where there is a CUDA device, else MPS, else the CPU. A device that is named
but absent is a one-line error, raised before any work. What a model is does not depend on it:
weights are saved from the CPU, so a model trained on a GPU loads and scores on a machine
without one (its floats differ in the last bits from a CPU-trained one, as they do between
thread counts, so the device is recorded with the model, not hashed into its id).
"""

from typing import Literal

from mnist_pipeline.tasks.core.errors import MnistError

GPU_RESOURCE = "GPU"  # the Dask worker resource a GPU worker declares (`dask worker ... --resources GPU=1`)

Device = Literal["auto", "cpu", "cuda", "mps"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda", "mps")


class DeviceUnavailable(MnistError, RuntimeError):
    """The device a run names is not on the machine that would train on it."""


def resolve(device: Device) -> str:
    """The torch device to compute on: ``cpu``, ``cuda`` or ``mps`` (``auto``: the best present)."""
    import torch

    present = {"cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if device == "auto":
        return next((name for name, there in present.items() if there), "cpu")
    if device != "cpu" and not present[device]:
        raise DeviceUnavailable(
            f"device {device!r} is not available on this machine ({_why_absent(device)}); use --device cpu, "
            "or auto to take the best device each machine has")
    return device


def describe(device: str) -> str:
    """The device as a training record names it: ``cpu``, or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    import torch

    if device == "cuda":
        index = torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def _why_absent(device: str) -> str:
    import torch

    if device == "cuda":
        if not torch.backends.cuda.is_built():
            return f"torch {torch.__version__} was built without CUDA"
        return "torch finds no CUDA device (check the driver and CUDA_VISIBLE_DEVICES)"
    return "torch finds no MPS device (Apple silicon with macOS 12.3 or later)"
