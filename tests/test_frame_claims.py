"""Frame claims as a unit: which frame fills a claim, and that none is left open."""

from __future__ import annotations

import numpy as np

from gateway.frame import Frame
from gateway.frame_claims import FrameClaim, FrameClaims


def frame(frame_id: int, exposed: float) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), frame_id, exposed, exposed)


def test_a_kept_frame_exposed_after_the_trigger_fills_the_claim_at_once() -> None:
    claims = FrameClaims()
    claim = FrameClaim(after_mono=10.0, deadline_mono=11.0)
    claims.add(claim, [frame(1, 9.9), frame(2, 10.1), frame(3, 10.2)])
    assert claim.frame is not None and claim.frame.frame_id == 2  # the first after, not newest
    assert len(claims) == 0


def test_the_first_frame_after_fills_every_claim_it_satisfies_and_no_later_one_replaces_it() -> (
    None
):
    claims = FrameClaims()
    early, late = FrameClaim(10.0, 11.0), FrameClaim(10.05, 11.0)
    claims.add(early, [frame(1, 9.9)])
    claims.add(late, [frame(1, 9.9)])
    claims.offer(frame(2, 10.02), now_mono=10.1)
    assert early.frame is not None and early.frame.frame_id == 2
    assert late.frame is None
    claims.offer(frame(3, 10.06), now_mono=10.15)
    claims.offer(frame(4, 10.09), now_mono=10.2)
    assert early.frame.frame_id == 2 and late.frame is not None and late.frame.frame_id == 3
    assert len(claims) == 0


def test_claims_past_their_deadline_or_withdrawn_are_dropped() -> None:
    claims = FrameClaims()
    expired, withdrawn, waiting = (
        FrameClaim(10.0, 10.5),
        FrameClaim(10.0, 12.0),
        FrameClaim(20.0, 21.0),
    )
    for claim in (expired, withdrawn, waiting):
        claims.add(claim, [])
    claims.withdraw(withdrawn)
    claims.offer(frame(1, 9.0), now_mono=10.6)  # satisfies none; the first one's time is up
    assert len(claims) == 1
    claims.offer(frame(2, 20.1), now_mono=20.2)
    assert waiting.frame is not None and len(claims) == 0
    assert expired.frame is None and withdrawn.frame is None


def test_each_commanded_exposure_gets_a_frame_of_its_own_oldest_first() -> None:
    claims = FrameClaims()
    first, second = FrameClaim(0.0, 9.0, exposure=True, first_id=5), FrameClaim(0.0, 9.0, True, 5)
    follower = FrameClaim(0.0, 9.0)  # a `next` claim beside them takes any frame after it
    for claim in (first, second, follower):
        claims.add(claim, [])
    claims.offer(frame(4, 1.0), now_mono=1.0)  # numbered before the commands: another's
    assert first.frame is None and second.frame is None
    assert follower.frame is not None and follower.frame.frame_id == 4
    claims.offer(frame(5, 1.1), now_mono=1.1)
    assert first.frame is not None and first.frame.frame_id == 5 and second.frame is None
    claims.offer(frame(6, 1.2), now_mono=1.2)
    assert second.frame is not None and second.frame.frame_id == 6
    assert len(claims) == 0
