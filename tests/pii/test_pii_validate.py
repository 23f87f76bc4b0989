"""curator.pii.validate and curator.pii.tld: each check on values that pass and on near misses."""

from __future__ import annotations

import pytest

from curator.pii import validate as v
from curator.pii.tld import parse_suffix_list, tlds


def _luhn_reference(number: str) -> bool:  # written out independently: double every second digit from the right
    total = 0
    for i, d in enumerate(int(c) for c in reversed(number)):
        total += sum(divmod(d * 2, 10)) if i % 2 else d
    return total % 10 == 0


@pytest.mark.parametrize("number", ["4111111111111111", "5500000000000004", "378282246310005", "6011111111111117",
                                    "30569309025904", "3530111333300000", "6200000000000005", "2222400070000005"])
def test_luhn_accepts_published_test_numbers(number):
    assert v.luhn(number) and _luhn_reference(number)


def test_luhn_agrees_with_a_reference_on_every_last_digit():
    for body in ("411111111111111", "37828224631000", "620000000000000", "1234567"):
        for d in "0123456789":
            assert v.luhn(body + d) == _luhn_reference(body + d)
        assert sum(v.luhn(body + d) for d in "0123456789") == 1  # exactly one check digit fits


@pytest.mark.parametrize("number, network", [
    ("4111111111111111", "visa"), ("4222222222222", "visa"), ("5500000000000004", "mastercard"),
    ("2221000000000009", "mastercard"), ("2720990000000007", "mastercard"), ("378282246310005", "amex"),
    ("6011111111111117", "discover"), ("6445644564456445", "discover"), ("30569309025904", "diners"),
    ("36227206271667", "diners"), ("3530111333300000", "jcb"), ("6200000000000005", "unionpay"),
    ("2200000000000004", "mir"), ("6759649826438453", "maestro"), ("135412345678911", "uatp"),
])
def test_card_networks(number, network):
    assert v.card_network(number) == network


@pytest.mark.parametrize("number", [
    "2721000000000000",  # mastercard's 2-series ends at 2720
    "3400000000000000",  # amex has 15 digits, not 16
    "9000000000000000", "7000000000000000", "411111111111",  # 12-digit visa does not exist
])
def test_card_network_refuses(number):
    assert v.card_network(number) is None


def test_is_card():
    assert v.is_card("4111 1111 1111 1111") and v.is_card("3782-822463-10005")
    assert not v.is_card("4111 1111 1111 1112")  # Luhn
    assert not v.is_card("9000 0000 0000 0008")  # Luhn-valid, no network
    assert not v.is_card("41111111111")  # too short


@pytest.mark.parametrize("iban", ["GB82WEST12345698765432", "DE89370400440532013000", "NL91ABNA0417164300",
                                  "FR1420041010050500013M02606", "NO9386011117947", "MT84MALT011000012345MTLCAST001S"])
def test_iban_mod97(iban):
    assert v.iban_mod97(iban)
    broken = iban[:-1] + ("0" if iban[-1] != "0" else "1")
    assert not v.iban_mod97(broken)


def test_iban_end_counts_the_country_length_and_stops_at_the_next_word():
    text = "pay GB82 WEST 1234 5698 7654 32 THEN stop"
    start = text.index("GB")
    assert text[start:v.iban_end(text, start, len(text))] == "GB82 WEST 1234 5698 7654 32"
    glued = "DE89370400440532013000X"
    assert v.iban_end(glued, 0, len(glued)) is None  # runs on into more letters
    assert v.iban_end("XX89370400440532013000", 0, 22) is None  # no such country
    assert v.iban_end("DE8937040044053201300", 0, 21) is None  # one character short
    assert v.iban_end("DE00370400440532013000", 0, 22) is None  # check digits 00 never exist


def test_iban_lengths_match_the_registry_examples():
    for example in ("AD1200012030200359100100", "BR1800360305000010009795493C1", "LC55HEMM000100010012001200023015",
                    "RU0304452522540817810538091310419", "SC18SSCB11010000000000001497USD"):
        assert v.IBAN_LENGTHS[example[:2]] == len(example) and v.iban_mod97(example)


@pytest.mark.parametrize("text, public_only, ok", [
    ("8.8.8.8", False, True), ("8.8.8.8", True, True), ("192.168.1.20", False, True), ("192.168.1.20", True, False),
    ("10.0.0.0/8", False, True), ("10.0.0.1/33", False, False), ("256.1.1.1", False, False),
    ("2001:db8::1", False, True), ("2001:db8::1", True, False),  # documentation range
    ("2a01:4f8:1::1", True, True), ("fe80::1%eth0", False, True), ("fe80::1%eth0", True, False),
    ("::", False, False), ("12:30:45", False, False), ("1:2:3:4:5:6:7:8:9", False, False),
])
def test_ip_ok(text, public_only, ok):
    assert v.ip_ok(text, public_only) is ok


def test_tld_list_is_the_bundled_snapshot():
    t = tlds()
    assert {"com", "uk", "de", "io", "museum", "xn--p1ai"} <= t  # xn--p1ai: .рф in punycode
    assert "рф" in t and not {"local", "example", "invalid", "localhost", "lan"} & t
    sample = ("// ===BEGIN ICANN DOMAINS===\ncom\n*.ck\n!www.ck\nxn--p1ai\n食狮.中国\n"
              "// ===END ICANN DOMAINS===\nblogspot.com")
    assert parse_suffix_list(sample) == {"com", "ck", "xn--p1ai", "中国", "xn--fiqs8s"}  # 中国 also as punycode


def test_domains_and_emails():
    assert v.email_ok("ann@mail.example.co.uk") and v.email_ok("x@debian.org")
    assert not v.email_ok("root@localhost.localdomain") and not v.email_ok("a@b.baz")
    assert not v.email_ok("x@com")  # no dot
    assert not v.email_ok("ann@example.com", ["example.com"])
    assert not v.email_ok("ann@lists.example.com", ["example.com"])  # subdomains are kept too
    assert v.email_ok("ann@notexample.com", ["example.com"])
    assert not v.email_ok("a" * 65 + "@debian.org")


def test_urls():
    assert v.url_ok("https://www.debian.org/doc/") and v.url_ok("www.kernel.org")
    assert v.url_ok("http://192.168.1.1:8080/admin") and v.url_ok("http://[2001:db8::1]/x")
    assert not v.url_ok("http://intranet.local/") and not v.url_ok("http://999.1.1.1/")
    assert not v.url_ok("https://example.org/x", ["example.org"])
    assert v.url_trim("https://x.org/a_(b).") == "https://x.org/a_(b)"
    assert v.url_trim("https://x.org/a),") == "https://x.org/a"  # "(see https://x.org/a)," in the text
    assert v.url_trim("https://x.org/?q=1&r=2;") == "https://x.org/?q=1&r=2"


@pytest.mark.parametrize("text, ok", [
    ("536-22-1234", True), ("536 22 1234", True), ("536.22.1234", True), ("536-22 1234", False),
    ("000-12-3456", False), ("666-12-3456", False), ("912-34-5678", False), ("536-00-1234", False),
    ("536-22-0000", False), ("111-11-1111", False), ("123-45-6789", False), ("078-05-1120", False),
])
def test_ssn(text, ok):
    assert v.ssn_ok(text) is ok


REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")


@pytest.mark.parametrize("text, spans", [
    ("212-555-0199", ["212-555-0199"]), ("(415) 555-0132", ["(415) 555-0132"]), ("415.555.0132", ["415.555.0132"]),
    ("+1 415 555 0132", ["+1 415 555 0132"]), ("1-212-555-0199", ["1-212-555-0199"]), ("4155550132", ["4155550132"]),
    ("+44 20 7946 0958", ["+44 20 7946 0958"]), ("020 7946 0958", ["020 7946 0958"]),
    ("030 901820", ["030 901820"]), ("+49 30 901820", ["+49 30 901820"]), ("01 23 45 67 89", ["01 23 45 67 89"]),
    ("98765 43210", ["98765 43210"]), ("(11) 91234-5678", ["(11) 91234-5678"]), ("03-123-4567", ["03-123-4567"]),
    # two numbers side by side, and a number next to a year
    ("+44 20 7946 0958 (415) 555-0132", ["+44 20 7946 0958", "(415) 555-0132"]),
    ("212-555-0199 2024", ["212-555-0199"]),
    # not phone numbers
    ("2024-01-15", []), ("20240315", []), ("1999-2004", []), ("02110-1301", []), ("192.168.10.20", []),
    ("5.1.23432.783", []), ("4196 5387 0791 4879", []), ("30 901820", []), ("555-0199", []), ("1234567", []),
    ("2022-10-08 03", []), ("4052 2026 27", []),  # a valid US number, but chunked like an account number
    ("0207 946 0958", ["0207 946 0958"]),  # a common (wrong) London grouping is still a phone number
])
def test_phone_spans(text, spans):
    assert [text[s:e] for s, e in v.phone_spans(text, 0, len(text), REGIONS)] == spans


def test_phone_regions_restrict_national_numbers():
    assert v.phone_spans("020 7946 0958", 0, 13, ("US",)) == []
    assert v.phone_spans("+44 20 7946 0958", 0, 16, ("US",)) == [(0, 16)]  # international: any region


def test_secrets():
    assert v.aws_key_ok("AKIA2OGYBAH6QWERTYUI") and not v.aws_key_ok("AKIAIOSFODNN7EXAMPLE")
    assert not v.aws_key_ok("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert not v.enough_entropy("x" * 36) and v.enough_entropy("a1b2c3d4e5f6")
    jwt = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
           ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
           ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
    assert v.jwt_ok(jwt)
    assert not v.jwt_ok(jwt.rsplit(".", 1)[0])  # two parts
    assert not v.jwt_ok(jwt.rsplit(".", 1)[0] + ".")  # no signature ...
    assert v.jwt_ok("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.")  # ... allowed only for alg "none"
    assert not v.jwt_ok("eyJub3Rqc29uIjo.eyJzdWIiOiIxIn0.sig")  # header is not JSON
    assert not v.jwt_ok("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.sig")  # no "alg"
    body = "\n".join(["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"] * 3)
    assert v.private_key_ok(body) and v.private_key_ok("Proc-Type: 4,ENCRYPTED\nDEK-Info: AES\n\n" + body)
    assert not v.private_key_ok("\n...\n") and not v.private_key_ok("not base64 at all! " * 10)
