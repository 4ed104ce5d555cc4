"""saeflow.studies.recsys.data: atomic files, chronological sequences, leave-one-out, item metadata."""

from __future__ import annotations

import pytest

from saeflow.errors import DataError
from saeflow.studies.recsys.data import (
    RecDataConfig,
    leave_one_out,
    load_interactions,
    load_item_meta,
    read_atomic,
)

INTER = """user_id:token\titem_id:token\trating:float\ttimestamp:float
u1\tb\t4\t30
u1\ta\t3\t10
u2\tc\t5\t5
u1\tc\t1\t20
u2\ta\t2\t5
u2\tb\t2\t7
u3\ta\t1\t1
"""
ITEM = """item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq
a\tThe Toy Story\t1995\tAnimation Comedy
b\tHeat\t1995\tAction Crime
c\tCasablanca\t1942\tDrama Romance
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_sequences_are_chronological_and_ties_keep_file_order(tmp_path):
    inter = load_interactions(write(tmp_path, "x.inter", INTER), RecDataConfig(min_user_interactions=3))
    assert inter.users == ("u1", "u2")  # u3 has one interaction
    # items indexed by first appearance in the file: b=1, a=2, c=3
    assert inter.item_tokens == ("[PAD]", "b", "a", "c")
    assert inter.sequences == ((2, 3, 1), (3, 2, 1))  # u1: a(10) c(20) b(30); u2: c(5) a(5, later row) b(7)
    split = leave_one_out(inter.sequences)
    assert split.train == [[2], [3]]
    assert split.valid_targets == [3, 2]
    assert split.test_histories == [[2, 3], [3, 2]]
    assert split.test_targets == [1, 1]


def test_item_meta(tmp_path):
    inter = load_interactions(write(tmp_path, "x.inter", INTER), RecDataConfig(min_user_interactions=3))
    meta = load_item_meta(write(tmp_path, "x.item", ITEM), inter)
    a = inter.item_tokens.index("a")
    assert meta.title_words[a] == ("toy", "story")
    assert meta.decade(a) == "1990s"
    assert meta.terms(a) == ["genre:Animation", "genre:Comedy", "decade:1990s", "word:toy", "word:story"]
    assert meta.terms(0) == []
    assert meta.genre_names == ["Action", "Animation", "Comedy", "Crime", "Drama", "Romance"]


@pytest.mark.parametrize(
    "text, msg",
    [
        ("user_id\titem_id:token\n1\t2\n", "header column"),
        ("user_id:token\titem_id:tok\n1\t2\n", "header column"),
        ("user_id:token\titem_id:token\n1\t2\t3\n", "bad.inter:2: 3 fields"),
        ("a:token\tt:float\n1\tnoon\n", "column 't' (float)"),
        ("", "empty file"),
    ],
)
def test_malformed_atomic_files_name_the_file(tmp_path, text, msg):
    with pytest.raises(DataError, match="bad.inter") as err:
        read_atomic(write(tmp_path, "bad.inter", text))
    assert msg in str(err.value)


def test_missing_column_and_short_users(tmp_path):
    with pytest.raises(DataError, match="no column 'timestamp'"):
        load_interactions(write(tmp_path, "y.inter", "user_id:token\titem_id:token\n1\t2\n"))
    with pytest.raises(DataError, match="fewer than 3"):
        leave_one_out([(1, 2)])
