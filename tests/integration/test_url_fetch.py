"""The worker's URL fetch through the SSRF guard, against a real local HTTP server."""

from __future__ import annotations

import pytest

from pixtools.jobs.fetch import SourceFetchError, SourceFetchRefused, fetch_url
from pixtools.settings import Settings
from tests.support.imageserver import Images


def settings(**extra: str) -> Settings:
    return Settings.from_env(
        {"PIXTOOLS_URL_SOURCES": "true", "PIXTOOLS_URL_SOURCE_HOSTS": "127.0.0.1,localhost"} | extra
    )


async def test_a_private_address_is_refused_without_the_test_setting(image_server: str) -> None:
    with pytest.raises(SourceFetchRefused, match="non-public address"):
        await fetch_url(f"{image_server}/photo.jpg", settings())


async def test_with_private_addresses_allowed_the_fetch_follows_a_redirect(
    image_server: str,
) -> None:
    body = await fetch_url(
        f"{image_server}/hop", settings(PIXTOOLS_URL_SOURCE_ALLOW_PRIVATE="true")
    )
    assert body == Images.photo


async def test_a_host_off_the_allowlist_is_refused_before_any_lookup(image_server: str) -> None:
    only_localhost = settings(
        PIXTOOLS_URL_SOURCE_HOSTS="localhost", PIXTOOLS_URL_SOURCE_ALLOW_PRIVATE="true"
    )
    with pytest.raises(SourceFetchRefused, match="PIXTOOLS_URL_SOURCE_HOSTS"):
        await fetch_url(f"{image_server}/photo.jpg", only_localhost)


async def test_a_dead_server_is_a_transient_error() -> None:
    from tests.support.processes import free_port

    with pytest.raises(SourceFetchError):
        await fetch_url(
            f"http://127.0.0.1:{free_port()}/x", settings(PIXTOOLS_URL_SOURCE_ALLOW_PRIVATE="true")
        )


@pytest.mark.parametrize(
    ("hosts", "host", "allowed"),
    [
        ("a.com", "a.com", True),
        ("a.com", "b.a.com", False),
        ("*.a.com", "b.a.com", True),
        ("*.a.com", "a.com", False),
        ("*.a.com", "evila.com", False),
        ("A.com, b.org", "b.org.", True),
        ("", "a.com", False),
    ],
)
def test_the_host_allowlist(hosts: str, host: str, allowed: bool) -> None:
    assert settings(PIXTOOLS_URL_SOURCE_HOSTS=hosts).url_host_allowed(host) is allowed
