"""Copy named arrays into a torch module's parameters (pure tensor helpers).

Reading pre-trained weights from saved models or files, and matching their rows to users and
items by external id, is the models' business: see `tuijian.models.pretrained`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from tuijian.errors import ConfigError

Array = np.ndarray | torch.Tensor


def module_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers of `module` by dotted name."""
    return {**dict(module.named_buffers()), **dict(module.named_parameters())}


def resolve_tensor(module: nn.Module, name: str) -> torch.Tensor:
    """The parameter or buffer `name`; a submodule's name stands for its `weight`."""
    tensors = module_tensors(module)
    if name in tensors:
        return tensors[name]
    if f"{name}.weight" in tensors:
        return tensors[f"{name}.weight"]
    known = ", ".join(sorted(tensors)[:20])
    raise ConfigError(f"{type(module).__name__} has no parameter {name!r}; it has: {known}")


def load_embeddings(module: nn.Module, name: str, array: Array) -> None:
    """Copy `array` into the parameter `name` of `module` (e.g. "item_emb" or "item_emb.weight").

    The shapes must be equal; the values are cast to the parameter's dtype and device.
    """
    target = resolve_tensor(module, name)
    value = torch.as_tensor(np.asarray(array) if not isinstance(array, torch.Tensor) else array)
    if tuple(value.shape) != tuple(target.shape):
        raise ConfigError(
            f"pre-trained {name!r} has shape {tuple(value.shape)}, "
            f"the parameter {tuple(target.shape)}"
        )
    with torch.no_grad():
        target.copy_(value.to(device=target.device, dtype=target.dtype))


def match_names(
    module: nn.Module,
    names: Mapping[str, Array],
    mapping: Mapping[str, str] | None,
    source: str = "arrays",
) -> dict[str, str]:
    """Source name -> parameter name: `mapping` checked against `names`, or the common names."""
    if mapping is None:
        tensors = module_tensors(module)
        common = {k: k for k in names if k in tensors}
        if not common:
            raise ConfigError(
                f"{source}: no array name matches a parameter of {type(module).__name__} "
                f"(have {', '.join(sorted(names)[:10])}); pass a mapping"
            )
        return common
    missing = [k for k in mapping if k not in names]
    if missing:
        raise ConfigError(
            f"{source} has no {', '.join(map(repr, missing))}; "
            f"it has: {', '.join(sorted(names)[:20])}"
        )
    return dict(mapping)


def copy_arrays(
    module: nn.Module,
    arrays: Mapping[str, Array],
    mapping: Mapping[str, str] | None = None,
    source: str = "arrays",
) -> list[str]:
    """Copy named `arrays` into `module` (see `match_names`); returns the names written."""
    pairs = match_names(module, arrays, mapping, source)
    for src_name, dst_name in pairs.items():
        load_embeddings(module, dst_name, arrays[src_name])
    return list(pairs.values())


def copy_parameters(
    src: nn.Module, dst: nn.Module, mapping: Mapping[str, str] | None = None
) -> list[str]:
    """Copy `src` parameters into `dst`: `{"src.name": "dst.name"}`, or by equal names.

    Without `mapping`, every name present in both modules is copied (at least one must be).
    Returns the destination names that were written.
    """
    arrays = {k: v.detach() for k, v in module_tensors(src).items()}
    return copy_arrays(dst, arrays, mapping, source=type(src).__name__)
