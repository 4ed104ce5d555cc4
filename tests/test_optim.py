import subprocess
import sys

import pytest
import torch

from saeflow.optim import FusedAdam, adam


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(7, 5, generator=g)),
        torch.nn.Parameter(torch.randn(5, generator=g)),
        torch.nn.Parameter(torch.randn(3, generator=g)),
    ]


def _grads(step: int, params, skip_last: bool) -> None:
    g = torch.Generator().manual_seed(100 + step)
    for i, p in enumerate(params):
        p.grad = None if (skip_last and i == len(params) - 1) else torch.randn(p.shape, generator=g)


def test_same_updates_as_torch_fused_adam_bit_for_bit():
    ours, theirs = _params(0), _params(0)
    opt = FusedAdam(ours, lr=1e-2)
    ref = torch.optim.Adam(theirs, lr=1e-2, betas=(0.9, 0.999), fused=True)
    for step in range(12):
        lr = 1e-2 * (1 - step / 12)
        opt.param_groups[0]["lr"] = lr
        for group in ref.param_groups:
            group["lr"] = lr
        _grads(step, ours, skip_last=step % 3 == 0)  # a parameter without a gradient is left alone
        _grads(step, theirs, skip_last=step % 3 == 0)
        opt.step()
        ref.step()
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    assert float(opt.state[ours[2]]["step"]) == 8  # stepped only when it had a gradient


def test_state_dict_round_trip_continues_identically():
    a, b = _params(1), _params(1)
    opt_a = FusedAdam(a, lr=1e-2)
    for step in range(3):
        _grads(step, a, skip_last=False)
        opt_a.step()
    saved = {idx: {k: v.clone() for k, v in s.items()} for idx, s in opt_a.state_dict()["state"].items()}
    with torch.no_grad():
        for pa, pb in zip(a, b, strict=True):
            pb.copy_(pa)
    opt_b = FusedAdam(b, lr=1e-2)
    opt_b.load_state_dict({"state": saved, "param_groups": opt_b.state_dict()["param_groups"]})
    for step in range(3, 6):
        _grads(step, a, skip_last=False)
        _grads(step, b, skip_last=False)
        opt_a.step()
        opt_b.step()
    for pa, pb in zip(a, b, strict=True):
        assert torch.equal(pa, pb)


def test_torch_adam_state_loads_into_fused_adam():
    ours, theirs = _params(2), _params(2)
    ref = torch.optim.Adam(theirs, lr=1e-2, fused=True)
    _grads(0, theirs, skip_last=False)
    ref.step()
    opt = FusedAdam(ours, lr=1e-2)
    opt.load_state_dict(ref.state_dict())
    assert set(opt.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert torch.equal(opt.state[ours[0]]["exp_avg"], ref.state[theirs[0]]["exp_avg"])


def test_missing_state_key_is_refused():
    opt = FusedAdam(_params(3), lr=1e-2)
    with pytest.raises(ValueError, match="lacks"):
        opt.load_state_dict({"state": {0: {"step": torch.tensor(1.0)}}, "param_groups": []})


def test_zero_grad_and_empty_list():
    params = _params(4)
    opt = adam(params, 1e-3, "cpu")
    _grads(0, params, skip_last=False)
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in params)
    with pytest.raises(ValueError, match="empty"):
        FusedAdam([], lr=1e-3)


def test_a_step_does_not_import_the_compiler():
    code = (
        "import sys, torch\n"
        "from saeflow.optim import adam\n"
        "p = torch.nn.Parameter(torch.ones(3)); opt = adam([p], 1e-3, 'cpu')\n"
        "p.grad = torch.ones(3); opt.step(); opt.zero_grad()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
