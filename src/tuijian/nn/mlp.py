"""A reusable MLP tower: Dropout -> Linear -> activation, repeated (NCF, two-tower, CTR models)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}


class MLP(nn.Module):
    """A stack of Linear layers, each preceded by dropout and followed by the activation.

    Args:
        sizes: input size then the output size of every layer, e.g. (128, 64, 32).
        dropout: dropout probability applied to the input of every Linear layer.
        activation: one of `ACTIVATIONS`.
        last_activation: apply the activation after the last layer too (NCF does).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        dropout: float = 0.0,
        activation: str = "relu",
        last_activation: bool = True,
    ) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs an input and at least one layer size, got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        self.sizes = tuple(int(s) for s in sizes)
        self.linears = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.act = ACTIVATIONS[activation]()
        self.last_activation = last_activation

    @property
    def output_size(self) -> int:
        """Width of the last layer."""
        return self.sizes[-1]

    def layer(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Layer `index` alone (dropout, Linear, activation), for callers that split the stack."""
        x = self.linears[index](self.dropout(x))
        return self.activate(index, x)

    def activate(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """The activation that follows Linear layer `index` (none after the last when disabled)."""
        if index == len(self.linears) - 1 and not self.last_activation:
            return x
        return self.act(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., sizes[0]) -> (..., sizes[-1])
        for index in range(len(self.linears)):
            x = self.layer(index, x)
        return x
