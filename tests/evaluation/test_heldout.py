"""Held-out positives: grouped per user, users without one counted; the protocol text."""

import pandas as pd
import pytest

from mlrec.core.constants import ITEMID, LABEL, ONLINE_LAST_N, USERID
from mlrec.core.errors import MlrecError
from mlrec.core.paths import SPLIT_SCRIPT
from mlrec.evaluation.errors import EvaluationError
from mlrec.evaluation.heldout import held_out_positives, protocol, protocol_line


def test_held_out_positives_groups_by_user_and_counts_skipped():
    online = pd.DataFrame({USERID: [1, 1, 1, 2, 2, 3], ITEMID: [10, 11, 12, 20, 21, 30], LABEL: [1, 0, 1, 0, 0, 1]})
    held = held_out_positives(online)
    assert held.userids.tolist() == [1, 3]
    assert [r.tolist() for r in held.relevant] == [[10, 12], [30]]
    assert held.n_relevant.tolist() == [2, 1]
    assert (held.users_total, held.users_skipped) == (3, 1)


def test_held_out_positives_drops_repeated_events_and_sorts_items():
    online = pd.DataFrame({USERID: [5, 5, 5, 4], ITEMID: [30, 10, 30, 7], LABEL: [1, 1, 1, 1]})
    held = held_out_positives(online)
    assert held.userids.tolist() == [4, 5]
    assert [r.tolist() for r in held.relevant] == [[7], [10, 30]]
    assert held.n_relevant.tolist() == [1, 2]


def test_no_positive_at_all_gives_no_user_to_score():
    held = held_out_positives(pd.DataFrame({USERID: [1, 2], ITEMID: [10, 20], LABEL: [0, 0]}))
    assert len(held.userids) == 0 and held.relevant == []
    assert (held.users_total, held.users_skipped) == (2, 2)


def test_missing_columns_name_the_split_script():
    with pytest.raises(EvaluationError, match=r"lack columns \['label'\]") as err:
        held_out_positives(pd.DataFrame({USERID: [1], ITEMID: [2]}))
    assert isinstance(err.value, MlrecError)
    assert SPLIT_SCRIPT in err.value.hint


def test_protocol_names_the_catalogue_size_and_hold_out_length():
    assert "all 123 items" in protocol(123)["catalogue"]
    assert f"last {ONLINE_LAST_N} held out" in protocol_line(123)
    assert "full catalogue (123 items)" in protocol_line(123)
    assert set(protocol(1)) == {"split", "relevant", "catalogue", "seen", "averaging"}
