"""Target safety: only http(s), every resolved address checked, private and special ranges refused unless an
admin lists their network, and the allow-list admits exactly what it lists."""

from __future__ import annotations

import ipaddress

import pytest
from aitip.errors import InvalidInput
from aitip.webhooks.targets import (
    ALLOWED_NETWORKS_ENV,
    allowed_networks,
    refusal,
    resolve_target,
)

REFUSED = [
    ("http://127.0.0.1/hook", "127.0.0.1", "loopback"),
    ("http://10.0.0.1/hook", "10.0.0.1", "private network"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "cloud metadata"),
    ("http://[::1]:8080/hook", "::1", "loopback"),
    ("http://localhost/hook", "127.0.0.1", "loopback"),  # a name that resolves to loopback
    ("http://[::ffff:127.0.0.1]/hook", "127.0.0.1", "IPv4-mapped form of 127.0.0.1, loopback"),
    ("http://[::ffff:a9fe:a9fe]/", "169.254.169.254", "IPv4-mapped form of 169.254.169.254, the cloud metadata"),
    ("http://[::127.0.0.1]/hook", "127.0.0.1", "IPv4-compatible form of 127.0.0.1, loopback"),
    ("http://2130706433/hook", "127.0.0.1", "loopback"),  # 127.0.0.1 written as one number
    ("https://172.16.0.1/", "172.16.0.1", "private network"),
    ("https://192.168.1.10/", "192.168.1.10", "private network"),
    ("https://100.64.0.1/", "100.64.0.1", "carrier-grade NAT"),
    ("https://[fc00::1]/", "fc00::1", "private network"),
    ("https://[fd00:ec2::254]/", "fd00:ec2::254", "cloud metadata"),
    ("https://[fe80::1]/", "fe80::1", "link-local"),
    ("https://169.254.1.1/", "169.254.1.1", "link-local"),
    ("https://0.0.0.0/", "0.0.0.0", "unspecified"),
    ("https://[::]/", "::", "unspecified"),
    ("https://224.0.0.1/", "224.0.0.1", "multicast"),
    ("https://[ff02::1]/", "ff02::1", "multicast"),
    ("https://240.0.0.1/", "240.0.0.1", ""),
    ("https://[64:ff9b::a00:1]/", "10.0.0.1", "NAT64 form of 10.0.0.1, private network"),
    ("https://[2002:a9fe:a9fe::1]/", "169.254.169.254", "6to4 form of 169.254.169.254"),
]


@pytest.mark.parametrize(("url", "address", "why"), REFUSED, ids=[r[0] for r in REFUSED])
@pytest.mark.asyncio
async def test_special_addresses_are_refused_without_configuration(url: str, address: str, why: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOWED_NETWORKS_ENV, raising=False)
    with pytest.raises(InvalidInput) as refused:
        await resolve_target(url)
    assert refused.value.code == "webhook_target_refused"
    assert address in refused.value.message and why in refused.value.message
    assert ALLOWED_NETWORKS_ENV in refused.value.message  # and says how an admin would allow it
    assert refused.value.detail["reason"] in refused.value.message
    assert refused.value.detail["address"] in refused.value.message


@pytest.mark.parametrize("url", ["http://93.184.216.34/hook?x=1", "https://[2606:4700:4700::1111]:8443/h",
                                 "https://[64:ff9b::808:808]/"])
@pytest.mark.asyncio
async def test_public_addresses_pass(url: str) -> None:
    target = await resolve_target(url, allowed=())
    assert len(target.addresses) == 1 and target.addresses[0].is_global


@pytest.mark.asyncio
async def test_the_target_names_the_host_and_connects_to_the_checked_address() -> None:
    target = await resolve_target("https://[2606:4700:4700::1111]:8443/hook?a=1", allowed=())
    assert target.host_header == "[2606:4700:4700::1111]:8443"
    assert target.url_for(target.addresses[0]) == "https://[2606:4700:4700::1111]:8443/hook?a=1"
    assert target.origin == "https://[2606:4700:4700::1111]:8443"
    target = await resolve_target("http://93.184.216.34/", allowed=())
    assert target.host_header == "93.184.216.34" and target.path == "/"


@pytest.mark.asyncio
async def test_the_allow_list_admits_exactly_what_it_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "127.0.0.1/32, 10.0.0.0/8")
    assert [str(n) for n in allowed_networks()] == ["127.0.0.1/32", "10.0.0.0/8"]
    for admitted in ("http://127.0.0.1:9/h", "http://10.0.0.1/h", "http://10.255.255.254/h",
                     "http://[::ffff:10.1.2.3]/h"):
        assert (await resolve_target(admitted)).addresses
    for refused in ("http://127.0.0.2/h", "http://192.168.0.1/h", "http://[::1]/h",
                    "http://169.254.169.254/h", "http://172.16.0.1/h"):
        with pytest.raises(InvalidInput):
            await resolve_target(refused)


@pytest.mark.asyncio
async def test_every_resolved_address_must_pass() -> None:
    # localhost resolves to 127.0.0.1 (and maybe ::1): admitting only some other loopback address is not enough.
    with pytest.raises(InvalidInput, match="refused: 127.0.0.1"):
        await resolve_target("http://localhost/h", allowed=[ipaddress.ip_network("127.0.0.2/32")])
    assert refusal(ipaddress.ip_address("127.0.0.1"), [ipaddress.ip_network("127.0.0.0/8")]) is None
    # A version mismatch never matches: an IPv6 network admits no IPv4 address.
    assert str(refusal(ipaddress.ip_address("10.0.0.1"), [ipaddress.ip_network("::/0")])) == "private network"


def test_a_malformed_allow_list_is_an_error_not_silence() -> None:
    with pytest.raises(ValueError, match="'10.0.0/33' is not a CIDR network"):
        allowed_networks({ALLOWED_NETWORKS_ENV: "127.0.0.1/32,10.0.0/33"})
    assert allowed_networks({ALLOWED_NETWORKS_ENV: " , "}) == ()
    assert allowed_networks({}) == ()


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com/", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://127.0.0.1:25/", "http:// or https://"),
    ("https://", "names no host"),
    ("https://user:pw@example.com/", "credentials"),
    ("https://example.com:0/", "port"),
    ("https://example.com:99999/", "malformed"),
    ("https://exa mple.com/", "spaces"),
    ("https://example.com/" + "a" * 3000, "at most 2048"),
])
@pytest.mark.asyncio
async def test_malformed_urls_are_refused_before_any_lookup(url: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as refused:
        await resolve_target(url, allowed=())
    assert refused.value.code == "webhook_url_invalid"


@pytest.mark.asyncio
async def test_a_name_that_does_not_resolve_is_its_own_error() -> None:
    with pytest.raises(InvalidInput, match="cannot be resolved") as refused:
        await resolve_target("https://no-such-host.invalid/hook", allowed=())
    assert refused.value.code == "webhook_unresolvable"


@pytest.mark.asyncio
async def test_why_a_target_is_refused_is_said_in_the_readers_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOWED_NETWORKS_ENV, raising=False)
    with pytest.raises(InvalidInput) as refused:
        await resolve_target("http://[::ffff:7f00:1]/hook")
    assert "IPv4-mapped form of 127.0.0.1, loopback (this host)" in refused.value.message
    chinese = refused.value.message_in("zh_CN")
    assert "127.0.0.1 的 IPv4-mapped 形式，环回地址（本机）" in chinese and "loopback" not in chinese
