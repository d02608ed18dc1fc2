"""The snippets in dns/ pass each resolver's own checker, offline.

BIND: named-checkconf / named-checkzone; unbound: unbound-checkconf; dnsmasq:
dnsmasq --test. CoreDNS is not packaged in Debian, so its Corefile only gets a
small structural check here: balanced blocks, a server block for the zone,
`forward . 127.0.0.1:5353` inside it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from tests.resolver_servers import (
    DEMO_PORT,
    DNS_DIR,
    ZONE,
    dnsmasq_config,
    free_port,
    require,
    unbound_config,
)

SNIPPETS = (
    "coredns/Corefile",
    "unbound/mcobs.conf",
    "bind/named.conf.forward",
    "bind/named.conf.delegation",
    "bind/parent-zone.db",
    "dnsmasq/mcobs.conf",
)


def run(*argv: str) -> str:
    """Run a checker; its combined output, or a failure showing it."""
    done = subprocess.run(
        [require(argv[0]), *argv[1:]],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(argv)} exited with {done.returncode}:\n{output}"
    return output


def test_every_snippet_exists_and_the_readme_names_it() -> None:
    readme = (DNS_DIR / "README.md").read_text()
    for relative in SNIPPETS:
        assert (DNS_DIR / relative).is_file(), relative
        assert relative in readme, f"dns/README.md does not mention {relative}"
    assert not list(DNS_DIR.rglob("*.py")), "dns/ is data only: a package there shadows dnspython"


def test_the_forwarding_snippets_point_at_the_demo_hub() -> None:
    expected = {
        "coredns/Corefile": f"127.0.0.1:{DEMO_PORT}",
        "unbound/mcobs.conf": f"127.0.0.1@{DEMO_PORT}",
        "bind/named.conf.forward": f"127.0.0.1 port {DEMO_PORT}",
        "dnsmasq/mcobs.conf": f"/{ZONE}/127.0.0.1#{DEMO_PORT}",
    }
    for relative, address in expected.items():
        text = (DNS_DIR / relative).read_text()
        assert address in text, f"dns/{relative} should forward to {address}"
        assert ZONE in text, relative


# --- unbound ------------------------------------------------------------------------


def test_unbound_snippet_passes_unbound_checkconf(tmp_path: Path) -> None:
    snippet = DNS_DIR / "unbound" / "mcobs.conf"
    text = snippet.read_text()
    assert re.search(r"^\s*do-not-query-localhost:\s*no\s*$", text, re.M)
    assert re.search(rf'^\s*domain-insecure:\s*"{ZONE}"\s*$', text, re.M)
    assert re.search(rf'^stub-zone:\s*\n\s*name:\s*"{ZONE}"', text, re.M)
    config = tmp_path / "unbound.conf"
    config.write_text(unbound_config(free_port(), tmp_path, snippet))
    assert "no errors" in run("unbound-checkconf", str(config))


# --- dnsmasq ------------------------------------------------------------------------


def test_dnsmasq_snippet_passes_dnsmasq_test(tmp_path: Path) -> None:
    snippet = DNS_DIR / "dnsmasq" / "mcobs.conf"
    assert "syntax check OK" in run("dnsmasq", "--test", f"--conf-file={snippet}")
    config = tmp_path / "dnsmasq.conf"  # and as the integration tests run it
    config.write_text(dnsmasq_config(free_port(), snippet))
    assert "syntax check OK" in run("dnsmasq", "--test", f"--conf-file={config}")


# --- BIND ---------------------------------------------------------------------------


def options_from_comments(text: str) -> list[str]:
    """The `validate-except` line the snippet's comments tell users to add to `options`."""
    return re.findall(r"^//\s+(validate-except\s[^\n]*;)\s*$", text, re.M)


def test_bind_forward_zone_passes_named_checkconf(tmp_path: Path) -> None:
    snippet = DNS_DIR / "bind" / "named.conf.forward"
    options = options_from_comments(snippet.read_text())
    assert options == [f'validate-except {{ "{ZONE}"; }};']
    named_conf = tmp_path / "named.conf"
    named_conf.write_text(
        f'options {{\n    directory "{tmp_path}";\n    dnssec-validation auto;\n'
        + "".join(f"    {line}\n" for line in options)
        + f'}};\ninclude "{snippet}";\n'
    )
    assert run("named-checkconf", str(named_conf)) == ""


def test_bind_delegation_passes_named_checkconf_and_named_checkzone(tmp_path: Path) -> None:
    parent = DNS_DIR / "bind" / "parent-zone.db"
    delegation = (DNS_DIR / "bind" / "named.conf.delegation").read_text()
    assert delegation.count('file "/etc/bind/parent-zone.db";') == 1
    conf = tmp_path / "named.conf.delegation"
    conf.write_text(delegation.replace("/etc/bind/parent-zone.db", str(parent)))
    named_conf = tmp_path / "named.conf"
    named_conf.write_text(f'options {{ directory "{tmp_path}"; }};\ninclude "{conf}";\n')
    assert "zone example.com/IN: loaded serial" in run("named-checkconf", "-z", str(named_conf))

    # `-i local`: check the glue without looking names up in the DNS; any warning
    # (a missing glue record is one) is a failure here.
    output = run("named-checkzone", "-i", "local", "example.com", str(parent))
    lines = output.splitlines()
    assert len(lines) == 2 and lines[0].startswith("zone example.com/IN: loaded serial"), output
    assert lines[1] == "OK"


def test_parent_zone_delegates_with_glue_for_every_nameserver() -> None:
    parent = dns.zone.from_file(
        str(DNS_DIR / "bind" / "parent-zone.db"), origin="example.com.", relativize=False
    )
    zone = dns.name.from_text(ZONE)
    ns = parent.get_rdataset(zone, dns.rdatatype.NS)
    assert ns is not None and len(ns) >= 2, "delegate to at least two nameservers"
    for rdata in ns:
        target = rdata.target
        assert target.is_subdomain(zone), "the example names its nameservers inside the zone"
        glue = parent.get_rdataset(target, dns.rdatatype.A)
        assert glue is not None and len(glue) > 0, f"no glue for {target}"
    assert parent.get_rdataset(zone, dns.rdatatype.SOA) is None  # a cut, not a zone


# --- CoreDNS ------------------------------------------------------------------------


Block = tuple[list[str], list[list[str]]]
"""A Corefile server block: its keys, and its directives (each a list of tokens,
with a nested `{ ... }` flattened into the directive's tokens)."""


def parse_corefile(text: str) -> list[Block]:
    """Just enough of the Caddyfile syntax CoreDNS reads: `#` comments, one directive
    a line, server blocks `keys { ... }`, and directive blocks nested once."""
    blocks: list[Block] = []
    keys: list[str] | None = None
    directives: list[list[str]] = []
    nested: list[str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        where = f"Corefile line {number}: {raw.strip()!r}"
        if keys is None:
            assert tokens[-1] == "{", f"{where}: a server block should open here"
            keys = tokens[:-1]
            assert keys, f"{where}: a server block needs a zone"
        elif tokens == ["}"] and nested is not None:
            directives[-1].extend(nested)
            nested = None
        elif tokens == ["}"]:
            blocks.append((keys, directives))
            keys, directives = None, []
        elif tokens[-1] == "{":
            assert nested is None, f"{where}: blocks nest one level only"
            directives.append(tokens[:-1])
            nested = []
        elif nested is not None:
            nested.extend(tokens)
        else:
            directives.append(tokens)
        assert all(t not in "{}" for t in tokens[:-1]), f"{where}: one brace, at the end"
    assert keys is None and nested is None, "Corefile: a block is not closed"
    return blocks


def test_corefile_forwards_the_zone_to_mcobs() -> None:
    blocks = parse_corefile((DNS_DIR / "coredns" / "Corefile").read_text())
    ours = [d for keys, d in blocks if any(k.split(":")[0].rstrip(".") == ZONE for k in keys)]
    assert len(ours) == 1, "one server block for the zone"
    directives = ours[0]
    plugins = [d[0] for d in directives]
    assert len(set(plugins)) == len(plugins), "a plugin may appear once per server block"
    assert set(plugins) <= {"errors", "log", "cache", "forward", "prometheus", "health"}
    forward = next(d for d in directives if d[0] == "forward")
    assert forward[1:3] == [".", f"127.0.0.1:{DEMO_PORT}"]


@pytest.mark.parametrize(
    "broken",
    [
        "global.example.com {\n    forward . 127.0.0.1:5353\n",  # not closed
        "forward . 127.0.0.1:5353\n",  # a directive outside any server block
        "{\n}\n",  # a server block without a zone
        "global.example.com {\n    cache { success 10 }\n}\n",  # two braces on a line
    ],
)
def test_the_corefile_check_rejects_broken_files(broken: str) -> None:
    with pytest.raises(AssertionError):
        parse_corefile(broken)
