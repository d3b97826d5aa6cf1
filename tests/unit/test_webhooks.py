"""Webhook signing, the SSRF guard and backoff."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixtools.backoff import backoff
from pixtools.webhooks.delivery import pinned_url
from pixtools.webhooks.guard import UnsafeWebhookUrl, is_public, resolve_public
from pixtools.webhooks.signing import sign, verify


def test_signature_is_hmac_of_timestamp_and_raw_body() -> None:
    body = b'{"id":"x"}'
    header = sign("s3cret", body, timestamp=1700000000)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify("s3cret", body, header, now=1700000010)
    assert not verify("other", body, header, now=1700000010)
    assert not verify("s3cret", body + b" ", header, now=1700000010)
    assert not verify("s3cret", body, header, now=1700000000 + 3600)  # too old: replay refused


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "224.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "::ffff:127.0.0.1",
        "fd00::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://0x7f000001/",
    ],
)
async def test_guard_refuses_urls_resolving_inside(url: str) -> None:
    with pytest.raises(UnsafeWebhookUrl):
        await resolve_public(url)


async def test_guard_allows_private_only_when_configured() -> None:
    assert await resolve_public("http://127.0.0.1:9/x", allow_private=True) == ["127.0.0.1"]


def test_pinned_url_keeps_path_and_host_header() -> None:
    assert pinned_url("https://hooks.example:8443/a/b?c=1", "203.0.113.9") == (
        "https://203.0.113.9:8443/a/b?c=1",
        "hooks.example:8443",
    )
    assert pinned_url("http://h.example/x", "2001:db8::1") == (
        "http://[2001:db8::1]/x",
        "h.example",
    )


@given(st.integers(1, 60), st.floats(0.1, 10), st.floats(1, 600))
def test_backoff_is_full_jitter_within_the_cap(attempt: int, base: float, cap: float) -> None:
    delay = backoff(attempt, base, cap)
    assert 0 <= delay <= min(cap, base * 2 ** (attempt - 1))
