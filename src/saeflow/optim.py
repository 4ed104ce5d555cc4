"""Adam on torch's fused kernel, without `torch.optim.Optimizer`.

Every `torch.optim.Optimizer` imports `torch._dynamo` on first use (its methods are wrapped to be skipped by
the compiler): ≈ 1.2 CPU-s per process, a seventh of a finetuning job in the default run. :class:`FusedAdam`
calls the same fused kernel `torch.optim.Adam(fused=True)` calls (`torch._fused_adam_`), with the same state
(`step`, `exp_avg`, `exp_avg_sq` per parameter), so the updates are the same bit for bit and checkpoints
keep their layout. Parameters without a gradient in a step are left alone, as torch's Adam does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")


def fused_adam_available(device: torch.device | str) -> bool:
    """Whether torch has the fused Adam kernel for this device type (CPU and CUDA in current torch)."""
    return hasattr(torch, "_fused_adam_") and torch.device(device).type in ("cpu", "cuda")


class FusedAdam:
    """Adam (no weight decay, no AMSGrad) over one parameter group; `param_groups[0]["lr"]` may be changed
    between steps like a torch optimizer's."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        params = list(params)
        if not params:
            raise ValueError("FusedAdam got an empty parameter list")
        self.param_groups: list[dict[str, Any]] = [{"params": params, "lr": lr, "betas": betas, "eps": eps}]
        self.state: dict[Tensor, dict[str, Tensor]] = {}

    @property
    def params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _state_of(self, p: Tensor) -> dict[str, Tensor]:
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
        return state

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        with_grad = [p for p in self.params if p.grad is not None]
        if not with_grad:
            return
        if any(p.grad.is_sparse for p in with_grad):
            raise RuntimeError("FusedAdam does not take sparse gradients")
        by_kind: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
        for p in with_grad:
            by_kind.setdefault((p.device, p.dtype), []).append(p)
        beta1, beta2 = group["betas"]
        for ps in by_kind.values():
            states = [self._state_of(p) for p in ps]
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                ps,
                [p.grad for p in ps],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                steps,
                amsgrad=False,
                lr=float(group["lr"]),
                beta1=beta1,
                beta2=beta2,
                weight_decay=0.0,
                eps=group["eps"],
                maximize=False,
            )

    def state_dict(self) -> dict[str, Any]:
        """torch's layout: {"state": {parameter index: {key: tensor}}, "param_groups": [...]}."""
        index = {p: i for i, p in enumerate(self.params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {
            "state": {index[p]: dict(s) for p, s in self.state.items()},
            "param_groups": [{**group, "params": list(range(len(self.params)))}],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        loaded: dict[Tensor, dict[str, Tensor]] = {}
        for idx, pstate in state_dict["state"].items():
            p = self.params[int(idx)]
            missing = set(STATE_KEYS) - set(pstate)
            if missing:
                raise ValueError(f"optimizer state of parameter {idx} lacks {sorted(missing)}")
            loaded[p] = {
                "step": pstate["step"].to(device=p.device, dtype=torch.float32).reshape(()),
                "exp_avg": pstate["exp_avg"].to(device=p.device, dtype=p.dtype).clone(),
                "exp_avg_sq": pstate["exp_avg_sq"].to(device=p.device, dtype=p.dtype).clone(),
            }
        self.state = loaded


def adam(params: Iterable[Tensor], lr: float, device: torch.device | str) -> FusedAdam | torch.optim.Adam:
    """Adam(β 0.9, 0.999) on the fused kernel: :class:`FusedAdam` where torch has it for `device`, else
    torch's own multi-pass Adam."""
    if fused_adam_available(device):
        return FusedAdam(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))  # pragma: no cover - other devices
