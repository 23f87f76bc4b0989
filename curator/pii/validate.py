"""Exact checks of PII candidates: checksums, issuer ranges, address ranges, TLDs, phone metadata, secrets.

Every function takes the candidate text (as the pattern matched it) and answers whether it is the real
thing. They are pure and cheap, so the engine can run them on every candidate the matcher reports.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import re
from collections.abc import Iterable

from curator.pii.tld import is_tld

_NON_DIGIT = re.compile(r"\D")


def digits(text: str) -> str:
    return _NON_DIGIT.sub("", text)


# ------------------------------------------------------------------------------------------ payment cards
def luhn(number: str) -> bool:
    """The Luhn (mod 10) checksum of a digit string holds."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _r(lengths: str) -> frozenset[int]:
    lo, _, hi = lengths.partition("-")
    return frozenset(range(int(lo), int(hi or lo) + 1))


# (network, first prefix, last prefix, lengths): prefixes of one range have the same number of digits.
# Issuer identification ranges in use as of 2025 (ISO/IEC 7812 registrations as the networks publish
# them); numbers outside every range are not payment cards even when their Luhn digit is right.
CARD_RANGES: tuple[tuple[str, str, str, frozenset[int]], ...] = (
    ("visa", "4", "4", frozenset({13, 16, 19})),
    ("mastercard", "51", "55", _r("16")),
    ("mastercard", "2221", "2720", _r("16")),
    ("amex", "34", "34", _r("15")),
    ("amex", "37", "37", _r("15")),
    ("discover", "6011", "6011", _r("16-19")),
    ("discover", "644", "649", _r("16-19")),
    ("discover", "65", "65", _r("16-19")),
    ("discover", "622126", "622925", _r("16-19")),
    ("diners", "300", "305", _r("14-19")),
    ("diners", "3095", "3095", _r("14-19")),
    ("diners", "36", "36", _r("14-19")),
    ("diners", "38", "39", _r("16-19")),
    ("jcb", "3528", "3589", _r("16-19")),
    ("unionpay", "62", "62", _r("16-19")),
    ("unionpay", "8100", "8171", _r("16-19")),
    ("maestro", "5018", "5018", _r("12-19")),
    ("maestro", "5020", "5020", _r("12-19")),
    ("maestro", "5038", "5038", _r("12-19")),
    ("maestro", "5893", "5893", _r("12-19")),
    ("maestro", "6304", "6304", _r("12-19")),
    ("maestro", "6759", "6759", _r("12-19")),
    ("maestro", "6761", "6763", _r("12-19")),
    ("mir", "2200", "2204", _r("16-19")),
    ("borica", "2205", "2205", _r("16")),
    ("rupay", "60", "60", _r("16")),
    ("rupay", "508", "508", _r("16")),
    ("rupay", "353", "353", _r("16")),
    ("rupay", "356", "356", _r("16")),
    ("rupay", "81", "82", _r("16")),
    ("verve", "506099", "506198", frozenset({16, 18, 19})),
    ("verve", "507865", "507964", frozenset({16, 18, 19})),
    ("verve", "650002", "650027", frozenset({16, 18, 19})),
    ("instapayment", "637", "639", _r("16")),
    ("interpayment", "636", "636", _r("16-19")),
    ("dankort", "5019", "5019", _r("16")),
    ("troy", "9792", "9792", _r("16")),
    ("uzcard", "8600", "8600", _r("16")),
    ("humo", "9860", "9860", _r("16")),
    ("gpn", "1946", "1946", frozenset({16, 18, 19})),
    ("lankapay", "357111", "357111", _r("16")),
    ("uatp", "1", "1", _r("15")),
)


def card_network(number: str) -> str | None:
    """The network whose issuer range and length fit a digit string (None: no network)."""
    n = len(number)
    for network, lo, hi, lengths in CARD_RANGES:
        if n in lengths and lo <= number[: len(lo)] <= hi:
            return network
    return None


def is_card(text: str) -> bool:
    """A payment card number: 12-19 digits (separators allowed), Luhn-valid, in a network's range."""
    number = digits(text)
    return 12 <= len(number) <= 19 and luhn(number) and card_network(number) is not None


# ------------------------------------------------------------------------------------------------- IBAN
# IBAN length per country (SWIFT IBAN registry, 2025, including its partial members).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_mod97(iban: str) -> bool:
    """ISO 13616 check: the country code and check digits moved to the end, letters as 10..35, mod 97 = 1."""
    moved = iban[4:] + iban[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def iban_end(text: str, start: int, end: int) -> int | None:
    """End of the IBAN starting at ``text[start]`` within ``[start, end)``: the country's length counted in
    letters and digits (spaces between groups skipped), mod-97 valid, not followed by a letter or digit.
    None: not an IBAN. (A pattern may have run on into the next word: the country length cuts it.)"""
    country = text[start:start + 2].upper()
    length = IBAN_LENGTHS.get(country)
    if length is None:
        return None
    chars, i = [], start
    while i < end and len(chars) < length:
        c = text[i]
        if c.isalnum() and c.isascii():
            chars.append(c.upper())
        elif c != " ":
            return None
        i += 1
    if len(chars) < length or (i < len(text) and text[i].isascii() and text[i].isalnum()):
        return None
    iban = "".join(chars)
    if not iban[2:4].isdigit() or not 2 <= int(iban[2:4]) <= 98:
        return None
    return i if iban_mod97(iban) else None


# -------------------------------------------------------------------------------------------- addresses
def ip_ok(text: str, public_only: bool) -> bool:
    """An IPv4/IPv6 address or interface (``/prefix``, IPv6 ``%zone`` allowed); with ``public_only``, one
    in globally routable space (not private, loopback, link-local, documentation, ...)."""
    addr = text.split("/", 1)[0]
    if "%" in addr:
        addr = addr.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(addr)
        if "/" in text:
            ipaddress.ip_interface(text.split("%", 1)[0] if "%" in text.split("/", 1)[0] else text)
    except ValueError:
        return False
    if ip.version == 6 and ip == ipaddress.IPv6Address("::"):
        return False
    return ip.is_global if public_only else True


def domain_ok(domain: str, keep_domains: Iterable[str] = ()) -> bool:
    """A host name whose last label is a real TLD and that is not one of ``keep_domains`` (or under one)."""
    host = domain.rstrip(".").lower()
    if "." not in host or len(host) > 253:
        return False
    if not is_tld(host.rsplit(".", 1)[1]):
        return False
    return not any(host == d or host.endswith("." + d) for d in keep_domains)


def email_ok(text: str, keep_domains: Iterable[str] = ()) -> bool:
    local, _, domain = text.rpartition("@")
    return 0 < len(local) <= 64 and domain_ok(domain, keep_domains)


_URL_HOST = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://)?(?:[^@/?#\s]*@)?(\[[0-9A-Fa-f:.]+\]|[^:/?#\s]+)")
URL_TRAILING = ".,;:!?'\")]}>*"


def url_trim(text: str) -> str:
    """The URL without trailing punctuation that belongs to the sentence (an unbalanced ``)`` or ``]``,
    a final period or comma)."""
    while text and text[-1] in URL_TRAILING:
        last = text[-1]
        if last == ")" and text.count("(") >= text.count(")"):
            break
        if last == "]" and text.count("[") >= text.count("]"):
            break
        text = text[:-1]
    return text


def url_ok(text: str, keep_domains: Iterable[str] = ()) -> bool:
    """A URL whose host is an IP address or a name under a real TLD (and not under ``keep_domains``)."""
    m = _URL_HOST.match(text)
    if not m:
        return False
    host = m.group(1)
    if host.startswith("["):
        return ip_ok(host[1:-1], False)
    if re.fullmatch(r"[0-9.]+", host):
        return ip_ok(host, False)
    return domain_ok(host, keep_domains)


# ----------------------------------------------------------------------------------------------- US SSN
_SSN_NEVER = frozenset({"078051120", "219099999", "123456789", "987654320"})


def ssn_ok(text: str) -> bool:
    """A US social security number as the SSA issues them: one separator kind, area not 000, 666 or
    900-999, group not 00, serial not 0000, not a famous sample number, not one repeated digit."""
    seps = {c for c in text if not c.isdigit()}
    if len(seps) > 1:
        return False
    n = digits(text)
    if len(n) != 9 or len(set(n)) == 1 or n in _SSN_NEVER:
        return False
    area, group, serial = n[:3], n[3:5], n[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# ------------------------------------------------------------------------------------------------ phone
# shapes that are never phone numbers: dates (anywhere in the candidate), year ranges, ZIP+4, dotted quads
_NOT_PHONE = re.compile(
    r"(?:^|\D)(?:\d{4}[\-./]\d{1,2}[\-./]\d{1,2}|\d{1,2}[\-./]\d{1,2}[\-./](?:19|20)\d\d)(?:\D|$)"
    r"|^(?:(?:1[89]|20)\d\d ?[\-/] ?(?:1[89]|20)?\d\d|\d{5}-\d{4}|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$")
_YEAR_RANGE = re.compile(r"(?:1[89]|20)\d\d ?[\-/] ?(?:1[89]|20)?\d\d")
_GROUP = re.compile(r"\+?\(?\d+\)?")
NANP = frozenset({"US", "CA"})
TRUNK_OPTIONAL = frozenset({"IN"})  # mobile numbers are written without the trunk 0 there


def _cuts_from_end(text: str) -> set[int]:
    """Positions of the separators of a written number, counted in digits from its end."""
    out, count = set(), 0
    for c in reversed(text):
        if c.isdigit():
            count += 1
        elif count:
            out.add(count)
    return out


def _grouping_ok(cand: str, formatted: str) -> bool:
    """A number written in 4-digit chunks (``4052 2026 27``, the look of a card or account number) must be
    grouped as ``phonenumbers`` formats it; any other grouping is accepted as people write numbers."""
    groups = re.findall(r"\d+", cand)
    if len(groups) < 2 or any(len(g) != 4 for g in groups[:-1]):
        return True
    width = len(digits(formatted))
    return {c for c in _cuts_from_end(cand) if c < width} <= _cuts_from_end(formatted)


@functools.cache
def _region_lengths(region: str) -> frozenset[int]:
    """Digit counts a number of ``region`` can have when written nationally: its possible national lengths,
    with and without the trunk prefix (phonenumbers' metadata)."""
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return frozenset()
    lengths = set(meta.general_desc.possible_length or ())
    prefix = len(meta.national_prefix or "")
    return frozenset(lengths | {n + prefix for n in lengths})


@functools.lru_cache(maxsize=65_536)
def _phone_variant_ok(cand: str, regions: tuple[str, ...]) -> bool:
    import phonenumbers

    n = digits(cand)
    if not 7 <= len(n) <= 15 or _NOT_PHONE.search(cand):
        return False
    plus = cand.startswith("+")
    if not plus and len(n) == len(cand) and not (len(n) == 10 or (len(n) == 11 and n[0] == "1")):
        return False  # a bare run of digits is a phone number only in NANP's 10/11-digit form
    if "." in cand and (len({c for c in cand if not c.isdigit()} - {"+"}) > 1
                        or any(len(g) < 2 for g in cand.lstrip("+").split("."))):
        return False  # dots with other separators or 1-digit groups: versions, not phone numbers
    fmt = phonenumbers.PhoneNumberFormat
    try:
        if plus:
            num = phonenumbers.parse(cand, None)
            return phonenumbers.is_valid_number(num) and _grouping_ok(cand, phonenumbers.format_number(
                num, fmt.INTERNATIONAL))
        for region in regions:
            if len(n) not in _region_lengths(region):
                continue
            num = phonenumbers.parse(cand, region)
            if not phonenumbers.is_valid_number(num):
                continue
            formatted = phonenumbers.format_number(num, fmt.NATIONAL)
            national = digits(formatted)
            if ((n == national or (region in NANP and n == "1" + national)
                 or (region in TRUNK_OPTIONAL and "0" + n == national)) and _grouping_ok(cand, formatted)):
                return True
    except phonenumbers.NumberParseException:
        return False
    return False


def phone_spans(text: str, start: int, end: int, regions: tuple[str, ...]) -> list[tuple[int, int]]:
    """The phone numbers in ``text[start:end]``, a run of digit groups that may hold several numbers side
    by side (or a number next to other digits). From the first group on, the longest run of groups (7-15
    digits) that is a valid number is taken, and the search goes on after it. A run is cut only where a
    group starts with ``+`` or ``(``, or where the separator differs from those inside the number
    (``212-555-0199 2024``), never inside a uniformly separated run (``4196 5387 0791 4879`` is one
    thing, not a card with a phone number at its end).

    A number is valid with ``phonenumbers``: an international one (``+``) anywhere, a national one in one
    of ``regions`` and written as that region writes it (its trunk prefix included). Dates, year ranges,
    ZIP+4 codes, dotted quads and versions, and bare digit runs other than NANP's 10/11 digits are refused
    before any lookup."""
    if end - start < 7 or _YEAR_RANGE.fullmatch(text, start, end):
        return []
    groups = [m.span() for m in _GROUP.finditer(text, start, end)]
    k = len(groups)
    seps = [""] + [text[groups[t - 1][1]:groups[t][0]] for t in range(1, k)]
    counts = [0]
    for s, e in groups:
        counts.append(counts[-1] + sum(c.isdigit() for c in text[s:e]))

    def cut_before(t: int, inside: set[str]) -> bool:
        return t in (0, k) or text[groups[t][0]] in "+(" or seps[t] not in inside

    out: list[tuple[int, int]] = []
    i = 0
    while i < k:
        hit = None
        for j in range(min(k, i + 8), i, -1):
            n = counts[j] - counts[i]
            if n < 7:
                break
            inside = set(seps[i + 1:j])
            if (n <= 15 and cut_before(i, inside) and cut_before(j, inside)
                    and _phone_variant_ok(text[groups[i][0]:groups[j - 1][1]], regions)):
                hit = j
                break
        if hit is None:
            i += 1
        else:
            out.append((groups[i][0], groups[hit - 1][1]))
            i = hit
    return out


# ---------------------------------------------------------------------------------------------- secrets
def enough_entropy(text: str, distinct: int = 10) -> bool:
    """At least ``distinct`` different characters (placeholders such as ``ghp_xxxx...`` have few)."""
    return len(set(text)) >= distinct


def aws_key_ok(text: str) -> bool:
    """An AWS access key id or secret key that is not one of AWS's documentation samples (``EXAMPLE``)."""
    return "EXAMPLE" not in text and enough_entropy(text)


def _b64url_json(part: str) -> object:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def jwt_ok(text: str) -> bool:
    """A JSON Web Token: its header decodes to a JSON object with ``alg``, its payload to a JSON object, and
    it has a signature unless ``alg`` is ``none`` (a sentence's full stop after two parts is no token)."""
    parts = text.split(".")
    if len(parts) != 3:
        return False
    try:
        header, payload = _b64url_json(parts[0]), _b64url_json(parts[1])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    if not (isinstance(header, dict) and isinstance(header.get("alg"), str) and isinstance(payload, dict)):
        return False
    return bool(parts[2]) or header["alg"].lower() == "none"


_B64_BODY = re.compile(r"[A-Za-z0-9+/=\s]*")


def private_key_ok(body: str) -> bool:
    """The body of a PEM/OpenSSH/PGP private-key block: optional ``Name: value`` header lines, then at
    least 64 base64 characters and nothing else."""
    lines = [ln for ln in body.strip().splitlines() if ":" not in ln]
    data = "".join(lines)
    return _B64_BODY.fullmatch(data) is not None and len(re.sub(r"[\s=]", "", data)) >= 64
