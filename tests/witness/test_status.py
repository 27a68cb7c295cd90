"""What one witness's status tells a customer: only their own log, nothing of the others."""

from __future__ import annotations

from gateway.witness.status import WitnessLog, WitnessRefusal, WitnessStatus

BAKERY, DAIRY = "baeckerei-schmidt", "molkerei-huber"


def _status(*, reachable: bool | None, last_error: str | None) -> WitnessStatus:
    return WitnessStatus(
        name="verband",
        key="witness.example/w1",
        url="http://127.0.0.1:8080",
        reachable=reachable,
        logs=3,
        logs_cosigned=1,
        last_error=last_error,
        entries_behind=12 + 300,
        seconds_behind=40.0,
        cosigned=17,
        refusals=[
            WitnessRefusal(log=DAIRY, status=422, reason=f"{DAIRY}: not an extension", at=5.0),
            WitnessRefusal(log=BAKERY, status=404, reason="not followed", at=6.0),
        ],
        per_log=[
            WitnessLog(log=BAKERY, cosigned=False, entries_behind=12, seconds_behind=3.5),
            WitnessLog(log=DAIRY, cosigned=False, entries_behind=300, seconds_behind=40.0),
            WitnessLog(log="gateway", cosigned=True),
        ],
    )


def test_a_customer_sees_their_own_log_and_refusals_only() -> None:
    mine = _status(reachable=True, last_error=None).for_log(BAKERY)
    assert [entry.log for entry in mine.per_log] == [BAKERY]
    assert (mine.logs, mine.logs_cosigned) == (1, 0)
    assert (mine.entries_behind, mine.seconds_behind) == (12, 3.5)
    assert [(r.log, r.status) for r in mine.refusals] == [(BAKERY, 404)]
    assert DAIRY not in mine.model_dump_json()
    assert mine.cosigned == 0  # the count over every log would tell how much others log
    assert (mine.name, mine.key, mine.url, mine.reachable) == (
        "verband", "witness.example/w1", "http://127.0.0.1:8080", True,
    )  # fmt: skip


def test_a_cosigned_log_counts_as_cosigned_and_not_behind() -> None:
    own = _status(reachable=True, last_error=None).for_log("gateway")
    assert (own.logs, own.logs_cosigned, own.entries_behind, own.seconds_behind) == (1, 1, 0, None)


def test_a_log_the_witness_has_not_seen_shows_nothing_behind() -> None:
    none = _status(reachable=True, last_error=None).for_log("someone-new")
    assert (none.logs, none.per_log, none.refusals, none.seconds_behind) == (0, [], [], None)


def test_only_a_connection_error_reaches_the_customer() -> None:
    # A round's error while the witness answers can name another customer's log.
    answered = _status(reachable=True, last_error=f"{DAIRY}: the tree is damaged")
    assert answered.for_log(BAKERY).last_error is None
    down = _status(reachable=False, last_error="http://127.0.0.1:8080: ClientConnectorError")
    assert down.for_log(BAKERY).last_error == "http://127.0.0.1:8080: ClientConnectorError"


def test_the_status_is_read_back_from_its_json() -> None:
    status = _status(reachable=None, last_error=None)
    assert WitnessStatus.model_validate_json(status.model_dump_json()) == status
    assert (
        WitnessStatus.model_validate({"name": "n", "key": "k", "url": "u", "new": 1}).reachable
        is None
    )
