"""servicekit.signing (the webhook signature scheme, rollover) and servicekit.backoff."""

from __future__ import annotations

import hashlib
import hmac
import time

from servicekit.signing import sign, verify

BODY = b'{"id":"e1","data":{"a":1}}'
OLD, NEW = "whsec_old", b"whsec_new"


def test_the_header_is_exactly_the_documented_scheme() -> None:
    header = sign(["s3cret", b"other"], BODY, 1_700_000_000)
    first = hmac.new(b"s3cret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    second = hmac.new(b"other", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={first},v1={second}"
    assert sign("s3cret", BODY, 1_700_000_000) == f"t=1700000000,v1={first}"  # one secret
    assert sign(b"s3cret", BODY, 1_700_000_000) == sign("s3cret", BODY, 1_700_000_000)
    assert sign("s3cret", BODY).startswith(f"t={int(time.time())}"[:-1])  # now by default


def test_during_rollover_old_and_new_secrets_both_verify() -> None:
    header = sign([NEW, OLD], BODY)  # the sender signs with both while the old one is valid
    assert verify(header, BODY, [OLD])  # a receiver that has not switched yet
    assert verify(header, BODY, [NEW])  # one that has
    assert verify(header, BODY, [OLD, NEW])  # one that holds both
    assert not verify(header, BODY, ["neither"])
    after = sign([NEW], BODY)  # rollover over: the old secret no longer signs
    assert verify(after, BODY, [NEW]) and not verify(after, BODY, [OLD])
    assert verify(after, BODY, [OLD, NEW])  # a receiver may keep both a while


def test_tampered_body_timestamp_or_mac_is_refused() -> None:
    now = int(time.time())
    header = sign(OLD, BODY, now)
    assert verify(header, BODY, OLD)
    assert not verify(header, BODY + b" ", OLD)
    assert not verify(header, BODY[:-1], OLD)
    assert not verify(header.replace(f"t={now}", f"t={now - 1}"), BODY, OLD)  # t is signed
    mac = header.split("v1=")[1]
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert not verify(f"t={now},v1={flipped}", BODY, OLD)


def test_stale_or_future_timestamps_are_refused() -> None:
    now = time.time()
    old = sign(OLD, BODY, int(now) - 301)
    assert not verify(old, BODY, OLD)
    assert verify(old, BODY, OLD, tolerance=400)
    future = sign(OLD, BODY, int(now) + 301)
    assert not verify(future, BODY, OLD)
    assert verify(sign(OLD, BODY, 1_000), BODY, OLD, now=1_100)  # an injected clock


def test_malformed_headers_are_refused() -> None:
    now = int(time.time())
    good = sign(OLD, BODY, now)
    mac = good.split("v1=")[1]
    for header in (
        "",
        "garbage",
        f"v1={mac}",  # no timestamp
        f"t={now}",  # no MAC
        f"t=soon,v1={mac}",
        f"t={now},t={now},v1={mac}",  # two timestamps: which one was signed?
        f"t={now},v1={mac},stray",
        f"t={now};v1={mac}",
    ):
        assert not verify(header, BODY, OLD), header
    # Spaces after commas and unknown keys (a future scheme) are tolerated.
    assert verify(f"t={now}, v1={mac}", BODY, OLD)
    assert verify(f"t={now},v0=abc,v1={mac}", BODY, OLD)
    assert not verify(good, BODY, [])  # no secret: nothing can match


def test_backoff_is_capped_exponential_with_the_asked_jitter() -> None:
    from servicekit.backoff import ceiling, delay

    assert [ceiling(n, base=0.1, cap=1.0) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert ceiling(10_000, base=2, cap=60) == 60  # no overflow far past the cap
    assert delay(3, base=10, cap=600, low=1, high=1) == 40  # no jitter
    assert delay(3, base=10, cap=600, low=0.5, rand=lambda: 0.0) == 20
    assert delay(3, base=10, cap=600, low=0.5, rand=lambda: 1.0) == 40
    samples = [delay(4, base=1, cap=5) for _ in range(2_000)]  # full jitter over [0, 5]
    assert 0 <= min(samples) < 0.5 and 4.5 < max(samples) <= 5
