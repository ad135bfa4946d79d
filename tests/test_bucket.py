"""The server's bucket: lumps at the phase, the cap, and balanced books."""

from __future__ import annotations

from sim.keepa import TokenBucket


def test_lumps_arrive_at_the_phase_and_stop_at_the_cap():
    b = TokenBucket(5, start_ms=0, phase_ms=10_000, initial=0)
    b.advance(9_999)
    assert b.balance == 0
    b.advance(10_000)
    assert b.balance == 5
    assert b.refill_in_ms(10_000) == 60_000
    assert b.refill_in_ms(40_000) == 30_000
    b.advance(10_000 + 100 * 60_000)
    assert b.balance == 300 and b.lost_to_cap == 5 * 101 - 300


def test_a_deficit_climbs_by_the_rate_each_minute_and_books_balance():
    b = TokenBucket(5, start_ms=0, phase_ms=0, initial=300)
    b.charge(340, 1)
    assert b.balance == -40 and b.min_balance == -40
    b.advance(1 + 3 * 60_000)
    assert b.balance == -25
    assert b.initial + b.credited - b.charged == b.balance
