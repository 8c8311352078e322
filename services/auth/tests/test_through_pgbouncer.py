"""The auth API through a real PgBouncer in transaction mode (DATABASE_POOLER=pgbouncer).

The tests imported here run in their home modules directly (on SQLite and on Postgres); here they run once more
with the app's database reached through PgBouncer, which hands out a server connection per transaction.
"""

from __future__ import annotations

import pytest

from .test_email_verification import test_the_link_verifies_once_and_the_token_is_single_use
from .test_login_parallel import test_parallel_guesses_at_one_account_from_many_addresses
from .test_routes_login import (
    test_login_rehashes_a_password_made_with_another_cost,
    test_login_with_json_answers_a_token_pair,
    test_me_answers_the_current_user,
    test_wrong_password_and_unknown_email_get_the_same_answer,
)
from .test_routes_refresh import (
    test_concurrent_refreshes_with_one_token_let_at_most_one_win,
    test_logout_ends_the_session_including_rotated_tokens,
    test_refresh_answers_a_new_pair_and_revokes_the_old_token,
    test_reusing_a_rotated_token_closes_the_whole_session,
)
from .test_routes_register import (
    test_duplicate_email_creates_nothing_case_insensitively,
    test_register_answers_202_without_user_or_tokens_and_stores_an_unverified_user,
)

__all__ = [
    "test_concurrent_refreshes_with_one_token_let_at_most_one_win",
    "test_duplicate_email_creates_nothing_case_insensitively",
    "test_login_rehashes_a_password_made_with_another_cost",
    "test_login_with_json_answers_a_token_pair",
    "test_logout_ends_the_session_including_rotated_tokens",
    "test_me_answers_the_current_user",
    "test_parallel_guesses_at_one_account_from_many_addresses",
    "test_refresh_answers_a_new_pair_and_revokes_the_old_token",
    "test_register_answers_202_without_user_or_tokens_and_stores_an_unverified_user",
    "test_reusing_a_rotated_token_closes_the_whole_session",
    "test_the_link_verifies_once_and_the_token_is_single_use",
    "test_wrong_password_and_unknown_email_get_the_same_answer",
]


@pytest.fixture
def database_url(pgbouncer_url: str) -> str:
    """The app's database through PgBouncer."""
    return pgbouncer_url
