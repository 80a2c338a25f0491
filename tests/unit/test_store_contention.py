"""The Firestore store names a transaction that concurrent writers kept aborting (the client's bare ValueError)
as ``Contended``, so the API answers 503 with Retry-After instead of 500, and any other ValueError stays what
it is (a defect, or a refusal such as an illegal transition)."""

import pytest
from google.api_core.exceptions import Aborted

from shared.app.ports import Contended
from shared.domain.orders import IllegalTransition, S
from shared.infra.store import contended_as_such


def exhausted() -> None:
    # what google.cloud.firestore_v1.transaction._Transactional does when every attempt was aborted
    try:
        raise Aborted("Transaction lock timeout")
    except Aborted as last:
        raise ValueError("Failed to commit transaction in 20 attempts.") from last


def test_an_exhausted_transaction_is_contended():
    with pytest.raises(Contended, match="ord_1"):
        contended_as_such("ord_1", exhausted)


def test_other_value_errors_pass_through():
    def illegal() -> None:
        raise IllegalTransition("ord_1", S.FILLED, S.CANCELED)

    with pytest.raises(IllegalTransition):
        contended_as_such("ord_1", illegal)
    assert contended_as_such("ord_1", lambda: 42) == 42
