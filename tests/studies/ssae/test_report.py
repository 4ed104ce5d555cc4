"""The SSAE table's convergence-control column, by hand."""

import pandas as pd
import pytest

from saeflow.studies.ssae.report import with_general_gain


def test_general_gain_is_relative_to_the_subdomains_gsae():
    df = pd.DataFrame(
        {
            "subdomain": ["medical", "medical", "medical", "social", "social"],
            "selection": ["gsae", "random", "dense", "gsae", "random"],
            "fvu_general": [0.40, 0.396, 0.44, 0.50, 0.50],
        }
    )
    gain = with_general_gain(df)["general_fvu_gain"].tolist()
    assert gain == pytest.approx([0.0, 0.01, -0.1, 0.0, 0.0])
