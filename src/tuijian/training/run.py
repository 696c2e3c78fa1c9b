"""What belongs to one training run rather than to the model: where and how it runs, and its RNG.

A model config says what is learned and how it is optimised (lr, epochs, batch size...); the
`RunOptions` say where the run goes and how fast (device, threads, time budget, precision), so
the same model trains on a laptop or a GPU without changing what it is. `RunRandom` is the one
source of randomness of a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tuijian.errors import ConfigError
from tuijian.models.neural import Precision


class RunOptions(BaseModel):
    """Where and how fast a run goes; the Trainer's keyword arguments.

    Attributes:
        device: torch device of the module and the batches ("cpu", "cuda", "cuda:1", "mps").
        threads: torch intra-op threads during the fit (restored after it); None keeps torch's.
        max_seconds: time budget of the training; once spent, the run validates and stops
            (`stopped_by="time_budget"`). Callbacks do not count against it.
        precision: "bf16" runs the forward passes of models that support it in bfloat16
            autocast; the precision is recorded on the model and used for scoring too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str = "cpu"
    threads: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    precision: Precision = "fp32"

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        try:
            device = torch.device(value)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"not a torch device: {value!r} ({exc})") from None
        missing = device_missing(device)
        if missing:
            raise ValueError(missing)
        return value


def device_missing(device: torch.device) -> str | None:
    """Why this torch build or machine cannot run on `device` (None when it can)."""
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        if torch.version.cuda is None:
            return (
                f"device {str(device)!r} needs a CUDA build of torch; this one is "
                f"{torch.__version__} without CUDA: install one from "
                "https://pytorch.org/get-started/locally/ or use --device cpu"
            )
        count = torch.cuda.device_count()
        if (device.index is None and count) or (device.index is not None and device.index < count):
            return None
        return f"device {str(device)!r} is not available: this machine has {count} CUDA device(s)"
    backend = getattr(torch.backends, device.type, None) or getattr(torch, device.type, None)
    available = getattr(backend, "is_available", None)
    if available is not None and available():
        return None
    return (
        f"device {str(device)!r} is not available in this torch build ({torch.__version__}) "
        "on this machine; use --device cpu"
    )


def build_run_options(**values: object) -> RunOptions:
    """`RunOptions` from keyword values; a bad value raises a one-line ConfigError."""
    try:
        return RunOptions.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"Trainer {where}: {message} (got {err.get('input')!r})") from None


class RunRandom:
    """The one source of randomness of a training run, derived from the model's `seed`.

    Module initialisation draws from torch seeded with `seed`. Epoch `e` draws from the seed
    sequence (seed, e): it gives the numpy generator handed to `model.batches` and seeds torch's
    generator (dropout, sampling noise) for that epoch. Every epoch's draws are therefore a
    function of (seed, epoch) alone, so a run resumed at epoch e draws exactly what the
    uninterrupted run drew, with no generator state to carry in the checkpoint but the seed.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def init(self) -> None:
        """Seed torch for building the module (its initial weights)."""
        torch.manual_seed(self.seed)

    def epoch(self, epoch: int) -> np.random.Generator:
        """Seed torch for epoch `epoch` and return the generator of its batches."""
        sequence = np.random.SeedSequence([self.seed, epoch])
        torch.manual_seed(int(sequence.generate_state(1)[0]))
        return np.random.default_rng(sequence)

    @staticmethod
    @contextmanager
    def isolated(device: torch.device) -> Iterator[None]:
        """Run with torch's global generators (CPU and `device`) restored afterwards, so a fit
        neither depends on nor changes the random state of the code around it."""
        if device.type == "cuda":
            index = torch.cuda.current_device() if device.index is None else device.index
            fork = torch.random.fork_rng(devices=[index], device_type="cuda")
        else:
            fork = torch.random.fork_rng(devices=[])  # the CPU generator only
        with fork:
            yield
