"""Every name pattern ends at the true end of the string (#14.11).

Python's ``$`` also matches before a final newline, and msgspec applies ``Meta(pattern=)``
with ``re.search``, so ``^[a-z]+$`` accepted ``"a\\n"``. Every pattern in the job spec's schema
and the API's OpenAPI parameters is checked here: whatever it accepts, it refuses with a
newline (or any other character) appended. The client-address rule for X-Forwarded-For and
the webhook URL checks are classes of input too, tested the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.types import HTTPScope

from pixtools.api.app import create_app
from pixtools.api.middleware import client_address
from pixtools.jobspec.job import JobSpec, SpecError, parse_spec
from pixtools.settings import Settings
from pixtools.webhooks.guard import UnsafeWebhookUrl, resolve_public


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def all_patterns() -> list[str]:
    schema = msgspec.json.schema(JobSpec)
    api = create_app(Settings(data_dir=str(Path("/nonexistent")))).openapi_schema.to_schema()
    return sorted(set(_patterns(schema)) | set(_patterns(api)))


PATTERNS = all_patterns()


def test_the_spec_and_the_api_have_patterns_to_check() -> None:
    # The output name and the job-list status filter, at least: the sweep below is not empty.
    assert len(PATTERNS) >= 2, PATTERNS


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), tail=st.sampled_from(["\n", "\r\n", "\n\n", " ", "\t", "x\n"]))
def test_no_pattern_accepts_a_trailing_newline(
    pattern: str, data: st.DataObject, tail: str
) -> None:
    value = data.draw(st.from_regex(pattern, fullmatch=True))
    assert re.search(pattern, value), (pattern, value)
    assert not re.search(pattern, value + tail), (pattern, value + tail)


@settings(max_examples=80)
@given(
    name=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True),
    tail=st.sampled_from(["\n", "\r\n", "\n\n"]),
)
def test_an_output_name_with_a_newline_is_refused(name: str, tail: str) -> None:
    spec = {"outputs": [{"name": name, "steps": [{"op": "grayscale"}]}]}
    assert parse_spec(json.dumps(spec)).outputs[0].name == name
    spec["outputs"][0]["name"] = name + tail
    with pytest.raises(SpecError) as caught:
        parse_spec(json.dumps(spec))
    assert caught.value.field == "outputs[0].name"


@settings(max_examples=80)
@given(
    colour=st.from_regex(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})", fullmatch=True),
    tail=st.sampled_from(["\n", "\r\n", " "]),
)
def test_a_hex_colour_with_a_newline_is_refused(colour: str, tail: str) -> None:
    def spec(background: str) -> str:
        step = {"op": "rotate", "degrees": 10, "background": background}
        return json.dumps({"outputs": [{"name": "a", "steps": [step]}]})

    parse_spec(spec(colour))
    with pytest.raises(SpecError) as caught:
        parse_spec(spec(colour + tail))
    assert "background" in str(caught.value)


# --- X-Forwarded-For is believed only from trusted proxies (#14.10) ---------------------------

addresses = st.ip_addresses(v=4).map(str)
TRUSTED = (ipaddress.ip_network("10.40.0.0/24"), ipaddress.ip_network("10.42.0.0/16"))


def scope(peer: str, forwarded: str | None) -> HTTPScope:
    """The part of an ASGI scope ``client_address`` reads."""
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return cast("HTTPScope", {"type": "http", "client": (peer, 1234), "headers": headers})


@given(peer=addresses, forwarded=st.lists(addresses, max_size=5).map(", ".join))
def test_an_untrusted_peer_is_the_client_whatever_it_forwards(peer: str, forwarded: str) -> None:
    if any(ipaddress.ip_address(peer) in net for net in TRUSTED):
        return  # covered by the next test
    assert client_address(scope(peer, forwarded), TRUSTED) == peer
    assert client_address(scope(peer, forwarded), ()) == peer


@given(
    spoofed=st.lists(addresses, max_size=4),
    client=addresses.filter(lambda a: not any(ipaddress.ip_address(a) in n for n in TRUSTED)),
    hops=st.lists(st.sampled_from(["10.40.0.7", "10.42.3.1"]), max_size=3),
)
def test_behind_trusted_proxies_the_client_is_the_last_untrusted_hop(
    spoofed: list[str], client: str, hops: list[str]
) -> None:
    forwarded = ", ".join([*spoofed, client, *hops])
    assert client_address(scope("10.42.0.1", forwarded), TRUSTED) == client


# --- webhook URLs: any text gives a 400-able error or passes, never another exception (#14.12) -

url_ish = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, host, port, rest: f"{scheme}://{host}{port}{rest}",
        st.sampled_from(["http", "https", "ftp", "HTTP", ""]),
        st.one_of(
            st.sampled_from(["[::1", "[::1]", "example.com", "1.2.3.4", "[", "]", "a b", "x\x00y"]),
            st.text(max_size=20),
        ),
        st.one_of(
            st.just(""),
            st.integers(-100, 200_000).map(lambda p: f":{p}"),
            st.text(max_size=8).map(lambda p: f":{p}"),
        ),
        st.text(max_size=20),
    ),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(url=url_ish)
def test_any_webhook_url_is_accepted_or_refused_by_name(url: str) -> None:
    spec = {"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}], "webhook_url": url}
    try:
        parse_spec(json.dumps(spec))
    except SpecError as exc:
        assert exc.field == "webhook_url", exc


@settings(max_examples=200)
@given(
    url=st.sampled_from(["http://example.com/", "https://example.com:8443/hook?x=1"]),
    where=st.integers(min_value=0, max_value=60),
    bad=st.sampled_from(["\n", "\r\n", "\t", " ", "\x00", "\x7f", "\x85", "\x0b"]),
)
def test_a_webhook_url_with_whitespace_or_a_control_character_is_refused(
    url: str, where: int, bad: str
) -> None:
    # urlsplit drops tabs and newlines without a word ("http://exa\nmple.com/" parses as
    # example.com): such a URL was checked as one and stored as another.
    where = min(where, len(url))
    spec = {"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]}
    parse_spec(json.dumps({**spec, "webhook_url": url}))
    with pytest.raises(SpecError) as caught:
        parse_spec(json.dumps({**spec, "webhook_url": url[:where] + bad + url[where:]}))
    assert caught.value.field == "webhook_url"
    assert "whitespace or control characters" in str(caught.value)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(url=url_ish.filter(lambda u: "://" in u))
def test_the_delivery_guard_refuses_bad_urls_with_its_own_error(url: str) -> None:
    # Numeric and malformed hosts only reach getaddrinfo without DNS; names may not resolve
    # here (no network), which is the same refusal.
    try:
        asyncio.run(asyncio.wait_for(resolve_public(url), 10))
    except UnsafeWebhookUrl:
        pass
    except TimeoutError:
        pass  # a name lookup that hangs offline is not the property under test
