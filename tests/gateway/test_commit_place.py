"""Where a durable COMMIT waits for the disk (gateway/messages/commit_place.py): on the loop
after a run of fast ones, back on the helper thread after a slow or failed one."""

from __future__ import annotations

from gateway.messages.commit_place import CommitPlace


def test_the_commit_place_moves_to_the_loop_after_fast_commits_and_back_after_a_slow_one() -> None:
    place = CommitPlace(slow_s=0.002, fast_needed=3, most_needed=12)
    assert not place.inline()  # nothing known of the disk yet: the helper thread
    for _ in range(2):
        place.timed(0.0005, inline=False)
    assert not place.inline()
    place.timed(0.0005, inline=False)
    assert place.inline()
    place.timed(0.0019, inline=True)
    assert place.inline()
    place.timed(0.05, inline=False)  # slow on the helper: back to a count of 3, no more
    assert place.needed == 3 and not place.inline()
    for _ in range(3):
        place.timed(0.0001, inline=False)
    assert place.inline()
    place.timed(0.002, inline=True)  # slow on the loop: the loop waited, so trust halves
    assert not place.inline() and place.needed == 6
    for _ in range(5):
        place.timed(0.0001, inline=False)
    assert not place.inline()
    place.timed(0.0001, inline=False)
    assert place.inline()
    for seconds in (0.01, 0.01, 0.01):  # each slow one the loop waited for doubles, up to 12
        for _ in range(place.needed):
            place.timed(0.0001, inline=False)
        assert place.inline()
        place.timed(seconds, inline=True)
    assert place.needed == 12
    assert (place.on_loop, place.on_helper) == (5, 2 + 1 + 1 + 3 + 6 + 6 + 12 + 12)


def test_a_run_of_fast_commits_on_the_loop_earns_the_trust_back() -> None:
    place = CommitPlace(slow_s=0.002, fast_needed=2, most_needed=8)
    for _ in range(2):
        place.timed(0.0001, inline=False)
    place.timed(0.01, inline=True)
    for _ in range(4):
        place.timed(0.0001, inline=False)
    place.timed(0.01, inline=True)
    assert place.needed == 8
    for _ in range(8):
        place.timed(0.0001, inline=False)
    for expected in (8, 8, 8, 8, 8, 8, 8, 4, 4, 4, 4, 2, 2, 2):
        assert place.inline()
        place.timed(0.0001, inline=True)
        assert place.needed == expected
    # Never below where it started.
    assert place.needed == place.least_needed == 2


def test_a_failed_commit_sends_the_retries_to_the_helper_thread() -> None:
    place = CommitPlace(slow_s=10.0, fast_needed=1, most_needed=4)
    place.timed(0.0001, inline=False)
    assert place.inline()
    place.failed(inline=True)
    assert not place.inline() and place.needed == 2
    assert (place.on_loop, place.on_helper) == (1, 1)
