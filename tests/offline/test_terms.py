import pandas as pd

from mlrec.core.constants import N_GENRES, USERID
from mlrec.offline.pit import COUNT_COLUMNS, clk_col
from mlrec.offline.terms import user_terms


def test_user_terms_need_three_clicks_and_skip_unknown_genre():
    latest = pd.DataFrame(0, index=range(3), columns=COUNT_COLUMNS)
    latest.insert(0, USERID, [10, 11, 12])
    latest.loc[0, clk_col(1)] = 3
    latest.loc[0, clk_col(8)] = 5
    latest.loc[0, clk_col(5)] = 2  # below threshold
    latest.loc[1, clk_col(0)] = 9  # unknown genre is never a term
    latest.loc[2, clk_col(N_GENRES - 1)] = 3
    assert user_terms(latest) == {10: [1, 8], 11: [], 12: [N_GENRES - 1]}
