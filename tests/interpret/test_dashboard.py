"""Dashboards: the HTML holds the expected latents, escapes token text, paginates; logit effects;
duplicates."""

import pandas as pd
import torch
from store_helpers import write_store

from saeflow.activations import ActivationStore
from saeflow.interpret.dashboard import (
    logit_effects,
    near_duplicates,
    write_dashboard,
    write_site_index,
)
from saeflow.interpret.explainers import Explanation
from saeflow.latents import LatentsConfig, top_activations
from saeflow.sae.base import make_sae


def test_logit_effects_and_near_duplicates():
    W_U = torch.eye(4)  # token t's logit = the direction's coordinate t
    W_dec = torch.tensor([[2.0, 0, 0, -1], [2.0, 0.01, 0, -1], [0, 1, 0, 0]])
    eff = logit_effects(W_dec, W_U, k=1)
    assert eff.top_ids[:, 0].tolist() == [0, 0, 1] and eff.bottom_ids[0, 0] == 3
    dup = near_duplicates(W_dec, threshold=0.9)
    assert [j for j, _ in dup[0]] == [1] and [j for j, _ in dup[1]] == [0] and dup[2] == []


def test_dashboard_html(tmp_path):
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(200, 8, generator=g)
    path = write_store(
        tmp_path / "acts",
        acts,
        token_ids=torch.randint(0, 20, (200,), generator=g),
        doc_index=torch.arange(200) // 20,
    )
    sae = make_sae({"architecture": "relu", "d_in": 8, "d_sae": 6}, seed=0)
    res = top_activations(sae, ActivationStore(path), LatentsConfig(n_top=4, random_pool=50, n_random=4))

    def decode(ids):
        return [f"<t{i}>&" for i in ids]

    expl = {i: Explanation(i, f"latent {i} <b>explained</b>", "hand") for i in range(6)}
    scores = pd.DataFrame(
        {"latent": range(6), "scorer": "detection", "balanced_accuracy": [0.9] * 6, "auroc": [0.8] * 6}
    )
    dash = write_dashboard(
        tmp_path / "dash",
        "sae-A",
        res,
        decode,
        explanations=expl,
        scores=scores,
        effects=logit_effects(sae.W_dec.detach(), torch.randn(20, 8)),
        duplicates=near_duplicates(sae.W_dec.detach()),
        per_page=4,
    )
    assert len(dash.pages) == 2  # 6 latents, 4 per page
    page = dash.pages[0].read_text()
    index = dash.index.read_text()
    for i in range(4):
        assert f"id='l{i}'" in page and f"page_000.html#l{i}" in index
    assert "id='l4'" in dash.pages[1].read_text()
    assert "&lt;t" in page and "<t" not in page.replace("<title", "").replace("<text", "")
    assert "&lt;b&gt;explained&lt;/b&gt;" in page and "<svg" in page and "promotes:" in page
    assert "http" not in page and "sortBy" in index
    site = write_site_index(tmp_path / "index.html", {"sae-A": dash.index})
    assert "dash/index.html" in site.read_text()
