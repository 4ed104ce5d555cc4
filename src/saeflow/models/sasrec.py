"""SASRec (Kang & McAuley 2018), written for saeflow: a causal self-attention next-item recommender, its
seeded trainer (full-softmax next-item CE, early stopping on validation NDCG@10) and the ``sasrec``
subject-model kind.

Layers are the attention blocks; the output of the last layer is the final layer-normed state, the vector
dotted with the (shared) item embeddings to score items: RecSAE's site. Records are item-index histories
(1..n_items, 0 = padding), right-padded, truncated to their last `max_len` items; positions count from the
first kept item. Weights are saved as safetensors plus a JSON config (no pickle).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from saeflow.errors import ConfigError, DataError
from saeflow.models.base import ModelBatch, SubjectModel, TokenLosses

WEIGHTS, CONFIG = "sasrec.safetensors", "sasrec.json"


@dataclass(frozen=True)
class SASRecConfig:
    """Architecture of one SASRec."""

    n_items: int
    """Number of items (indices 1..n_items; 0 is padding)."""
    d_model: int = 64
    """Embedding / hidden width."""
    n_layers: int = 2
    """Self-attention blocks."""
    n_heads: int = 1
    """Attention heads per block."""
    max_len: int = 50
    """Longest history seen (older items are dropped)."""
    dropout: float = 0.2
    """Dropout on embeddings, attention and feed-forward outputs (training only)."""

    def __post_init__(self):
        if self.n_items < 1 or self.d_model < 1 or self.n_layers < 1 or self.max_len < 2:
            raise ConfigError(f"sasrec: n_items, d_model, n_layers must be >= 1 and max_len >= 2; got {self}")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"sasrec.d_model ({self.d_model}) must be a multiple of sasrec.n_heads ({self.n_heads})"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SASRecConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"sasrec: unknown keys {sorted(unknown)}")
        return cls(**d)


class _Block(nn.Module):
    """Pre-LN block: x + Attn(LN(x)) (causal), then x + FFN(LN(x))."""

    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.p = cfg.n_heads, cfg.dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, d), nn.Linear(d, d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.p if self.training else 0.0
        )
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(self.ln2(x))))))


class SASRecNet(nn.Module):
    """Item + learned positional embedding, causal blocks, final layer norm; scores = state · item
    embeddings."""

    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.cfg = cfg
        self.item_emb = nn.Embedding(cfg.n_items + 1, cfg.d_model, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.final_ln = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.splices: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {}
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, upto: int | None = None
    ) -> torch.Tensor:
        """[B, T, d] output of block `upto` (default the last: the layer-normed scoring state)."""
        last = self.cfg.n_layers - 1 if upto is None else upto
        t = input_ids.shape[1]
        if t > self.cfg.max_len:
            raise DataError(f"sasrec: sequence length {t} exceeds max_len {self.cfg.max_len}")
        x = self.item_emb(input_ids) * math.sqrt(self.cfg.d_model) + self.pos_emb.weight[:t]
        x = self.drop(x) * attention_mask.unsqueeze(-1).to(x.dtype)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.cfg.n_layers - 1:
                x = self.final_ln(x)
            if i in self.splices:
                x = self.splices[i](x)
            if i == last:
                break
        return x

    def item_scores(self, state: torch.Tensor) -> torch.Tensor:
        """[..., n_items + 1] dot products with every item embedding (column 0 = padding, -inf)."""
        s = state @ self.item_emb.weight.T
        s[..., 0] = -math.inf
        return s


def next_item_ce(net: SASRecNet, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TokenLosses:
    """Full-softmax CE of the next item at every position that has one in the batch."""
    logits = net.item_scores(net(input_ids, attention_mask))
    scored = torch.zeros_like(attention_mask, dtype=torch.bool)
    scored[:, :-1] = attention_mask[:, 1:].bool()
    target = torch.zeros_like(input_ids)
    target[:, :-1] = input_ids[:, 1:]
    loss = F.cross_entropy(logits.transpose(1, 2), target, reduction="none", ignore_index=0)
    return TokenLosses(loss * scored, scored)


def pad_batch(
    token_lists: Sequence[Sequence[int]], max_len: int, device: torch.device | str = "cpu"
) -> ModelBatch:
    """Right-pad the last `max_len` items of each list."""
    kept = [list(t)[-max_len:] for t in token_lists]
    t = max((len(k) for k in kept), default=1) or 1
    ids = torch.zeros(len(kept), t, dtype=torch.long)
    for i, k in enumerate(kept):
        ids[i, : len(k)] = torch.as_tensor(k, dtype=torch.long)
    return ModelBatch(ids.to(device), (ids != 0).long().to(device))


class SASRec(SubjectModel):
    """The ``sasrec`` subject-model kind: item histories in, the state at every position out."""

    kind = "sasrec"

    def __init__(self, net: SASRecNet, name: str = "sasrec", device: str | torch.device = "cpu"):
        self.net = net.eval().to(device)
        self.name, self.device = name, torch.device(device)
        self.n_layers, self.d_model = net.cfg.n_layers, net.cfg.d_model

    @property
    def scoring_layer(self) -> int:
        return self.n_layers - 1

    def encode(self, records: Sequence[Sequence[int]]) -> list[list[int]]:
        n = self.net.cfg.n_items
        out = []
        for r in records:
            r = [int(i) for i in r]
            if any(not 1 <= i <= n for i in r):
                raise DataError(f"sasrec: item indices must be in 1..{n}")
            out.append(r[-self.net.cfg.max_len :])
        return out

    def batch(self, token_lists: Sequence[Sequence[int]]) -> ModelBatch:
        return pad_batch(token_lists, self.net.cfg.max_len, self.device)

    def stored_mask(self, batch: ModelBatch) -> torch.Tensor:
        return batch.attention_mask.bool()

    @torch.no_grad()
    def hidden(self, batch: ModelBatch, layer: int) -> torch.Tensor:
        return self.net(batch.input_ids, batch.attention_mask, upto=self.check_layer(layer))

    @contextmanager
    def splice(self, layer: int, fn: Callable[[torch.Tensor], torch.Tensor]):
        self.check_layer(layer)
        if layer in self.net.splices:
            raise ConfigError(f"sasrec: layer {layer} is already spliced")
        self.net.splices[layer] = fn
        try:
            yield self
        finally:
            del self.net.splices[layer]

    @torch.no_grad()
    def token_losses(self, batch: ModelBatch) -> TokenLosses:
        return next_item_ce(self.net, batch.input_ids, batch.attention_mask)

    @torch.no_grad()
    def last_states(self, histories: Sequence[Sequence[int]], batch_size: int = 512) -> torch.Tensor:
        """[U, d] scoring state at the last position of each history (under any active splice)."""
        out = []
        for s in range(0, len(histories), batch_size):
            b = self.batch(self.encode(histories[s : s + batch_size]))
            h = self.net(b.input_ids, b.attention_mask)
            out.append(h[torch.arange(len(h)), b.attention_mask.sum(1) - 1])
        return torch.cat(out)

    @torch.no_grad()
    def scores(self, states: torch.Tensor) -> torch.Tensor:
        """[U, n_items + 1] item scores of scoring states."""
        return self.net.item_scores(states)

    def save(self, out_dir: str | Path, info: dict[str, Any] | None = None) -> None:
        save_sasrec(self.net, out_dir, info)


# ----------------------------------------------------------------------------------------------- persistence
def save_sasrec(net: SASRecNet, out_dir: str | Path, info: dict[str, Any] | None = None) -> None:
    """sasrec.safetensors (weights) + sasrec.json (config and `info`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(out / WEIGHTS))
    (out / CONFIG).write_text(
        json.dumps({"config": dataclasses.asdict(net.cfg), "info": info or {}}, indent=2)
    )


def load_sasrec(model_dir: str | Path, device: str = "cpu") -> SASRec:
    d = Path(model_dir)
    if not (d / WEIGHTS).is_file() or not (d / CONFIG).is_file():
        raise DataError(f"{d}: no saved SASRec ({WEIGHTS} + {CONFIG})")
    cfg = SASRecConfig.from_dict(json.loads((d / CONFIG).read_text())["config"])
    net = SASRecNet(cfg)
    net.load_state_dict(load_file(str(d / WEIGHTS)))
    return SASRec(net, name=d.name, device=device)


# ----------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class SASRecTrainConfig:
    """Optimisation of one SASRec."""

    lr: float = 5e-3
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Adam L2 penalty."""
    batch_size: int = 128
    """Training windows per step."""
    max_epochs: int = 200
    """Upper bound on passes over the training windows."""
    patience: int = 3
    """Stop after this many validations without a better NDCG@10 (the best weights are kept)."""
    eval_every: int = 2
    """Epochs between validations."""
    max_seconds: float = 0.0
    """Wall-clock cap on training (stops like early stopping); 0 = none. A cap makes results depend on the
    machine's load: bound training by max_epochs for reproducible runs."""
    all_windows: bool = False
    """Train on every max_len window of long sequences (False: only each user's most recent window, as
    SASRec)."""
    seed: int = 0
    """Seeds initialisation, dropout and data order."""

    def __post_init__(self):
        if (
            self.lr <= 0
            or self.batch_size < 1
            or self.max_epochs < 1
            or self.patience < 1
            or self.eval_every < 1
        ):
            raise ConfigError(
                f"sasrec training: lr, batch_size, max_epochs, patience, eval_every must be positive; {self}"
            )


class SASRecTrainResult(NamedTuple):
    model: SASRec
    best_epoch: int
    best_valid_ndcg10: float
    epochs: int
    seconds: float
    history: list[dict[str, float]]


def training_windows(
    sequences: Sequence[Sequence[int]], max_len: int, last_only: bool = False
) -> list[list[int]]:
    """Each training sequence cut from its end into windows of max_len + 1 items overlapping by one item
    (every next-item transition is trained on once), or only its last window; windows shorter than 2 items are
    dropped."""
    out = []
    for seq in sequences:
        end = len(seq)
        while end >= 2:
            out.append(list(seq[max(0, end - max_len - 1) : end]))
            end -= max_len
            if last_only:
                break
    return out


# ----------------------------------------------------------------------------------------------- ranking
# Next-item ranking helpers (one target per user; conventions in saeflow.studies.recsys.metrics, which
# re-exports them): the model's validation needs them, and the models layer imports no study.
def mask_histories(
    scores: torch.Tensor, histories: Sequence[Sequence[int]], targets: Sequence[int]
) -> torch.Tensor:
    """A copy of `scores` with padding (column 0) and each user's history items set to -inf, the target
    kept."""
    if scores.ndim != 2 or len(histories) != scores.shape[0] or len(targets) != scores.shape[0]:
        raise DataError(
            f"scores {tuple(scores.shape)} must be [U, n_items+1] with one history/target per user"
        )
    out = scores.float().clone()
    out[:, 0] = -math.inf
    rows = [u for u, h in enumerate(histories) for _ in h]
    cols = [i for h in histories for i in h]
    if rows:
        out[torch.tensor(rows), torch.tensor(cols)] = -math.inf
    t = torch.as_tensor(list(targets), dtype=torch.long)
    u = torch.arange(len(t))
    out[u, t] = scores[u, t].float()
    return out


def target_ranks(scores: torch.Tensor, targets: Sequence[int]) -> torch.Tensor:
    """[U] 0-based rank of each target among the finite-scored candidates (ties count against the target)."""
    t = torch.as_tensor(list(targets), dtype=torch.long)
    if t.numel() and (t.min() < 1 or t.max() >= scores.shape[1]):
        raise DataError(f"targets must be item indices in 1..{scores.shape[1] - 1}")
    tgt = scores[torch.arange(len(t)), t].unsqueeze(1)
    ahead = (scores >= tgt) & torch.isfinite(scores)
    return ahead.sum(1) - 1


def full_ranks(
    scores: torch.Tensor, histories: Sequence[Sequence[int]], targets: Sequence[int]
) -> torch.Tensor:
    """Rank of each target against all items not in the user's history."""
    return target_ranks(mask_histories(scores, histories, targets), targets)


def ndcg_per_user(ranks: torch.Tensor, k: int) -> torch.Tensor:
    r = ranks.double()
    return torch.where(r < k, 1.0 / torch.log2(r + 2.0), torch.zeros_like(r))


def validate(model: SASRec, histories, targets, k: int = 10) -> float:
    """Full-ranking NDCG@k (history excluded) of the model's scores."""
    ranks = full_ranks(model.scores(model.last_states(histories)), histories, targets)
    return float(ndcg_per_user(ranks, k).mean())


def train_sasrec(
    cfg: SASRecConfig,
    train_cfg: SASRecTrainConfig,
    train_seqs: Sequence[Sequence[int]],
    valid_targets: Sequence[int],
    *,
    log: Callable[[str], None] | None = None,
) -> SASRecTrainResult:
    """Train on `train_seqs` (each user's seq[:-2]); validate on predicting `valid_targets` from them."""
    torch.manual_seed(train_cfg.seed)
    gen = torch.Generator().manual_seed(train_cfg.seed)
    net = SASRecNet(cfg)
    model = SASRec(net)
    windows = training_windows(train_seqs, cfg.max_len, last_only=not train_cfg.all_windows)
    if not windows:
        raise DataError("train_sasrec: no training sequence has 2 or more items")
    opt = torch.optim.Adam(net.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    best, best_epoch, best_state, bad, history = -1.0, 0, None, 0, []
    t0 = time.perf_counter()
    epoch = 0
    for epoch in range(1, train_cfg.max_epochs + 1):
        net.train()
        order = torch.randperm(len(windows), generator=gen).tolist()
        total, n = 0.0, 0
        for s in range(0, len(order), train_cfg.batch_size):
            b = pad_batch([windows[i] for i in order[s : s + train_cfg.batch_size]], cfg.max_len + 1)
            ids, mask = b.input_ids, b.attention_mask
            inp, tgt = ids[:, :-1], ids[:, 1:]
            real = tgt != 0
            loss = F.cross_entropy(net.item_scores(net(inp, mask[:, :-1])[real]), tgt[real])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                net.item_emb.weight[0].zero_()
            count = int(real.sum())
            total, n = total + float(loss.detach()) * count, n + count
        point = {"epoch": epoch, "train_loss": total / max(n, 1), "seconds": time.perf_counter() - t0}
        timed_out = 0 < train_cfg.max_seconds < point["seconds"]
        if epoch % train_cfg.eval_every == 0 or timed_out or epoch == train_cfg.max_epochs:
            net.eval()
            point["valid_ndcg10"] = validate(model, train_seqs, valid_targets)
            if point["valid_ndcg10"] > best:
                best, best_epoch, bad = point["valid_ndcg10"], epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
        history.append(point)
        if log:
            log(json.dumps(point))
        if bad >= train_cfg.patience or timed_out:
            break
    net.load_state_dict(best_state)
    net.eval()
    return SASRecTrainResult(model, best_epoch, best, epoch, time.perf_counter() - t0, history)
