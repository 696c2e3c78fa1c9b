"""BSPM (Choi et al., SIGIR 2023): blurring then sharpening a history on the item graph.

Both processes are ODEs over the normalized item-item filter P~ = R~^T R~ of GF-CF:

    blurring    dy/dt = y P~ - y,   y(0) = r,            t in [0, T_b]   (heat diffusion)
    sharpening  dy/dt = -y P~,      y(0) = blurred (+ beta r D^-1/2 V V^T D^1/2), t in [0, T_s]

solved with fixed-step Euler or RK4 (each step one or four sparse products, no adaptive
solver). With early merge (BSPM-EM, the paper's best) the ideal low-pass term joins the state
before sharpening; with late merge (BSPM-LM) it is added to the sharpened result. With
`point_combination` the result is the mean of the states at every step. The paper's Gowalla
settings are the defaults: EM, RK4 with one step of T_s = 2.5, beta 0.2, 448 singular vectors.

Memory: on a catalogue up to `dense_items` the fit runs the process on the identity, so RK4
holds about eight items x items float32 arrays at once (2.1 GB at 8,192 items, 0.44 GB at
3,706); above it each batch of score rows takes that many (batch x items) arrays instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from tuijian.models.graph.gfcf import FilterConfig, GraphFilter, ItemFilters
from tuijian.models.registry import register

Solver = Literal["euler", "rk4"]


def integrate(
    f: Callable[[np.ndarray], np.ndarray], y0: np.ndarray, end: float, steps: int, solver: Solver
) -> list[np.ndarray]:
    """States of dy/dt = f(y) after each of `steps` fixed steps from t = 0 to `end`."""
    h = np.float32(end / steps)
    y, states = y0, []
    for _ in range(steps):
        if solver == "euler":
            y = y + h * f(y)
        else:
            k1 = f(y)
            k2 = f(y + (h / 2) * k1)
            k3 = f(y + (h / 2) * k2)
            k4 = f(y + h * k3)
            y = y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        states.append(y)
    return states


class BSPMConfig(FilterConfig):
    """Blurring and sharpening times, steps and solvers, the ideal term's weight and merge."""

    n_factors: int = Field(448, gt=0)
    ideal_weight: float = Field(0.2, ge=0)  # beta
    merge: Literal["early", "late"] = "early"
    blur_time: float = Field(1.0, gt=0)
    blur_steps: int = Field(1, gt=0)
    blur_solver: Solver = "euler"
    sharpen: bool = True
    sharpen_time: float = Field(2.5, gt=0)
    sharpen_steps: int = Field(1, gt=0)
    sharpen_solver: Solver = "rk4"
    point_combination: bool = False


@register("bspm")
class BSPM(GraphFilter[BSPMConfig]):
    """Blurs a history over the item graph, adds the ideal low-pass term, then sharpens it."""

    test_config: ClassVar[dict[str, Any]] = {"n_factors": 4, "sharpen_time": 0.5}
    dense_matrices: ClassVar[int] = 8  # RK4 on the identity (module docstring)

    def apply(self, history: np.ndarray | sp.csr_matrix, filters: ItemFilters) -> np.ndarray:
        """The blurred, merged and sharpened scores of each history row."""
        cfg = self.config
        r = history.toarray() if sp.issparse(history) else np.asarray(history)
        r = np.asarray(r, dtype=np.float32)
        ideal = np.float32(cfg.ideal_weight) * filters.ideal(r) if cfg.ideal_weight else None
        if cfg.blur_solver == "euler" and cfg.blur_steps == 1 and cfg.blur_time == 1.0:
            states = [filters.linear(history)]  # r + 1 * (r P~ - r), one product of the sparse r
        else:
            states = integrate(
                lambda y: filters.linear(y) - y, r, cfg.blur_time, cfg.blur_steps, cfg.blur_solver
            )
        del r
        early = cfg.merge == "early" and cfg.sharpen and ideal is not None
        if cfg.sharpen:
            y0 = states[-1] + ideal if early else states[-1]
            sharpened = integrate(
                lambda y: -filters.linear(y),
                y0,
                cfg.sharpen_time,
                cfg.sharpen_steps,
                cfg.sharpen_solver,
            )
            states = [*states, *sharpened] if cfg.point_combination else sharpened
        out = np.mean(states, axis=0) if cfg.point_combination else states[-1]
        if ideal is not None and not early:
            out = out + ideal
        return np.asarray(out, dtype=np.float32)
