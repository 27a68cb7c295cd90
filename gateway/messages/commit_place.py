"""Where a durable COMMIT waits for the disk: on the event loop while the disk syncs fast, else
on the store's helper thread (``gateway/messages/store.py`` runs it; this decides).

Handing a COMMIT to the helper thread and being woken back through the loop's self-pipe cost
more CPU here than the whole COMMIT on the loop, and pays only while the disk is slow enough
that the loop has something better to do than wait. ``CommitPlace`` times every durable COMMIT:
after a run of them under ``INLINE_COMMIT_MAX_S`` (``FAST_COMMITS_BEFORE_INLINE`` to begin with)
the next ones run on the loop, until one is slower or fails; then the helper thread takes them
again. An SD card whose fsync takes milliseconds keeps the helper thread.

What a slow disk can cost the loop: the COMMIT that first finds it slow waits on the loop for as
long as the disk takes. Each slow (or failed) COMMIT on the loop doubles the run of fast ones
needed before the loop takes them again, up to ``MAX_FAST_COMMITS_BEFORE_INLINE``, and each such
run completed on the loop halves it again: a disk that is often slow holds the loop at most once
per 1,024 COMMITs, and a disk that fails keeps its retries on the helper thread.
"""

from __future__ import annotations

__all__ = [
    "FAST_COMMITS_BEFORE_INLINE",
    "INLINE_COMMIT_MAX_S",
    "MAX_FAST_COMMITS_BEFORE_INLINE",
    "CommitPlace",
]

# A durable COMMIT on the loop holds up reading and acknowledging for its whole wait. Up to 2 ms
# that is no more than the paced loop's own wait between wake-ups (gateway/messages/pacing.py);
# a slower COMMIT sends the next ones to the helper thread. Here a one-message COMMIT took 0.2-0.4
# ms (p99 ~1.2 ms, a few of several ms while ext4 flushed its journal).
INLINE_COMMIT_MAX_S = 0.002
# Fast COMMITs in a row before the loop takes them: one fast fsync between slow ones (a disk's
# write cache, a journal flush not yet due) proves nothing. 16 at 1,000 msg/s is ~30 ms. A COMMIT
# timed on the helper thread includes getting the GIL back from a busy loop: a loop that has work
# to do keeps its helper, as it should.
FAST_COMMITS_BEFORE_INLINE = 16
# The most it grows to after slow COMMITs on the loop (module text): ~1 s of commits at 1,000 msg/s.
MAX_FAST_COMMITS_BEFORE_INLINE = 1024


class CommitPlace:
    """Where the next durable COMMIT runs: on the loop while the disk syncs fast, else on the
    helper thread (module text). Starts on the helper thread: nothing is known of the disk yet."""

    def __init__(
        self,
        slow_s: float = INLINE_COMMIT_MAX_S,
        fast_needed: int = FAST_COMMITS_BEFORE_INLINE,
        most_needed: int = MAX_FAST_COMMITS_BEFORE_INLINE,
    ) -> None:
        self.slow_s = slow_s
        self.least_needed = fast_needed
        self.most_needed = most_needed
        self.needed = fast_needed  # fast COMMITs in a row before the loop takes the next
        self._fast_in_a_row = 0
        self._fast_on_loop = 0  # … of which ran on the loop since ``needed`` last changed
        self.on_loop = 0  # durable COMMITs run on the loop thread (status, logged at close)
        self.on_helper = 0  # … and on the helper thread
        self.slow = 0  # … of which took ``slow_s`` or longer, or failed

    def inline(self) -> bool:
        return self._fast_in_a_row >= self.needed

    def timed(self, seconds: float, *, inline: bool) -> None:
        """One durable COMMIT took ``seconds`` (on the loop if ``inline``)."""
        self._count(inline)
        if seconds >= self.slow_s:
            self._slow(inline)
            return
        self._fast_in_a_row += 1
        if inline:
            self._fast_on_loop += 1
            if self._fast_on_loop >= self.needed > self.least_needed:
                self.needed //= 2
                self._fast_on_loop = 0

    def failed(self, *, inline: bool) -> None:
        """A durable COMMIT failed: as slow as can be (a disk failing after a long timeout must
        not keep its retries on the loop)."""
        self._count(inline)
        self._slow(inline)

    def _count(self, inline: bool) -> None:
        if inline:
            self.on_loop += 1
        else:
            self.on_helper += 1

    def _slow(self, inline: bool) -> None:
        self.slow += 1
        self._fast_in_a_row = self._fast_on_loop = 0
        if inline:
            self.needed = min(self.needed * 2, self.most_needed)
