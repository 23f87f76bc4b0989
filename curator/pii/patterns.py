"""The PII families of the fast engine: for each entity, locator patterns, an exact pattern and a check.

A family finds its values in three steps:

1. ``locate``: patterns that a multi-pattern engine (Hyperscan or RE2) runs, all families in one pass.
   They use only what both engines support (no look-around, no back-reference) and are written so that
   every match of the exact pattern lies inside a locator match widened by ``reach`` characters
   (left, right): a locator may fire where the exact pattern does not, never the reverse.
2. ``exact``: a Python regular expression (ASCII classes) run only inside the located regions; its
   group ``v`` (or the whole match) is the candidate value. A match is at most ``max_len`` characters.
3. ``check``: exact validation in Python (checksums, issuer ranges, TLD list, phone metadata, decoding),
   which returns the value's span (possibly trimmed) or None.

Families are listed in priority order: when two detections overlap, the longer one wins, then the one
listed first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from curator.pii import validate as v


@dataclass(frozen=True)
class Options:
    """What the checks depend on: IP scope, domains left alone, phone regions."""

    public_ip_only: bool = False
    keep_domains: tuple[str, ...] = ()
    phone_regions: tuple[str, ...] = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")


Check = Callable[[str, "re.Match[str]", Options], "list[tuple[int, int]]"]


@dataclass(frozen=True)
class Family:
    entity: str
    locate: tuple[str, ...]
    exact: re.Pattern[str]
    check: Check
    reach: tuple[int, int] = (0, 0)
    max_len: int = 64
    caseless: bool = False  # locator patterns match case-insensitively
    secret: bool = field(default=False)


def _span(m: re.Match[str]) -> tuple[int, int]:
    return m.span("v") if "v" in m.re.groupindex and m.group("v") is not None else m.span()


def _when(pred: Callable[[str, Options], bool]) -> Check:
    def check(text: str, m: re.Match[str], opts: Options) -> list[tuple[int, int]]:
        s, e = _span(m)
        return [(s, e)] if pred(text[s:e], opts) else []
    return check


def _iban(text: str, m: re.Match[str], opts: Options) -> list[tuple[int, int]]:
    s, e = m.span()
    end = v.iban_end(text, s, e)
    return [(s, end)] if end is not None else []


def _phone(text: str, m: re.Match[str], opts: Options) -> list[tuple[int, int]]:
    s, e = m.span()
    return v.phone_spans(text, s, e, opts.phone_regions)


def _url(text: str, m: re.Match[str], opts: Options) -> list[tuple[int, int]]:
    s, e = m.span()
    value = v.url_trim(text[s:e])
    return [(s, s + len(value))] if len(value) > 7 and v.url_ok(value, opts.keep_domains) else []


def _private_key(text: str, m: re.Match[str], opts: Options) -> list[tuple[int, int]]:
    return [m.span()] if v.private_key_ok(m.group("body")) else []


def _ip(text: str, m: re.Match[str], opts: Options) -> list[tuple[int, int]]:
    s, e = m.span()
    value = text[s:e]
    if value.endswith(":") and not value.endswith("::"):  # "address fe80::1: ..." (a colon of the prose)
        e -= 1
        value = value[:-1]
    return [(s, e)] if v.ip_ok(value, opts.public_ip_only) else []


def _c(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII | flags)


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_LOCAL = r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9\-]{0,61}[A-Za-z0-9]"
_PHONE_GROUP = r"(?:\(\d{1,5}\)|\d{1,15})"

FAMILIES: tuple[Family, ...] = (
    Family(
        "PRIVATE_KEY",
        locate=(r"-----BEGIN [A-Z0-9 ]{0,24}PRIVATE KEY",),
        exact=_c(r"-----BEGIN (?P<kind>(?:[A-Z0-9]+ ){0,2})PRIVATE KEY(?: BLOCK)?-----"
                 r"(?P<body>[\s\S]{0,16000}?)-----END (?P=kind)PRIVATE KEY(?: BLOCK)?-----"),
        check=_private_key, reach=(0, 16_100), max_len=16_100, secret=True,
    ),
    Family(
        "JWT",
        locate=(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ",),
        exact=_c(r"(?<![A-Za-z0-9_\-.])eyJ[A-Za-z0-9_\-]{8,2000}\.eyJ[A-Za-z0-9_\-]{8,4000}"
                 r"\.[A-Za-z0-9_\-]{0,2000}(?![A-Za-z0-9_\-]|\.[A-Za-z0-9_\-])"),
        check=_when(lambda s, o: v.jwt_ok(s)), reach=(0, 8_100), max_len=8_100, secret=True,
    ),
    Family(
        "AWS_SECRET_KEY",
        locate=(r"secret_?(?:access_?)?key",),
        exact=_c(r"(?i:(?:aws_?)?secret_?(?:access_?)?key)[\"']?\s{0,4}[:=]\s{0,4}[\"']?"
                 r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
        check=_when(lambda s, o: v.aws_key_ok(s)), reach=(4, 60), max_len=100, caseless=True, secret=True,
    ),
    Family(
        "AWS_ACCESS_KEY",
        locate=(r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}",),
        exact=_c(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])"),
        check=_when(lambda s, o: v.aws_key_ok(s)), max_len=20, secret=True,
    ),
    Family(
        "GITHUB_TOKEN",
        locate=(r"gh[pousr]_[A-Za-z0-9]{36}", r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}"),
        exact=_c(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})"
                 r"(?![A-Za-z0-9_])"),
        check=_when(lambda s, o: v.enough_entropy(s.rsplit("_", 1)[-1])), max_len=93, secret=True,
    ),
    Family(
        "SLACK_TOKEN",
        locate=(r"xox[abposre]-[0-9]", r"hooks\.slack\.com/services/T"),
        exact=_c(r"(?<![A-Za-z0-9\-])xox[abposre]-[0-9]{6,14}-[0-9A-Za-z\-]{6,120}(?![A-Za-z0-9\-])"
                 r"|https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,32}"
                 r"(?![A-Za-z0-9])"),
        check=_when(lambda s, o: v.enough_entropy(s)), reach=(8, 140), max_len=140, secret=True,
    ),
    Family(
        "URL",
        locate=(r"(?:https?|ftp)://", r"www[0-9]{0,3}\."),
        exact=_c(r"(?<![A-Za-z0-9])(?:(?i:https?|ftp)://|(?i:www)\d{0,3}\.)[^\s<>\"'`{}|\\^\[\]]{1,2000}"),
        check=_url, reach=(0, 2_010), max_len=2_010, caseless=True,
    ),
    Family(
        "EMAIL_ADDRESS",
        locate=(r"[A-Za-z0-9_%+\-]@[A-Za-z0-9]",),
        exact=_c(rf"(?<![A-Za-z0-9_%+\-.]){_LOCAL}@{_DOMAIN}(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"),
        check=_when(lambda s, o: v.email_ok(s, o.keep_domains)), reach=(320, 260), max_len=580,
    ),
    Family(
        "IBAN_CODE",
        locate=(r"[A-Za-z]{2}[0-9]{2} ?[A-Za-z0-9]{4}",),
        exact=_c(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?"),
        check=_iban, reach=(0, 44), max_len=44, caseless=True,
    ),
    Family(
        "CREDIT_CARD",
        locate=(r"[0-9](?:[ \-]?[0-9]){11,18}\b",),
        exact=_c(r"(?<![\w\-.])(?<!\d[ \-])(?:\d{12,19}|\d{4}(?P<sep>[ \-])\d{3,6}(?:(?P=sep)\d{3,6}){1,3}"
                 r"(?!(?P=sep)\d))(?![\w]|[\-.]\d)"),
        check=_when(lambda s, o: v.is_card(s)), max_len=23,
    ),
    Family(
        "IP_ADDRESS",
        locate=(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"),
        exact=_c(rf"(?<![\w.]){_IPV4}(?:/\d{{1,2}})?(?![\w]|\.\d)"
                 rf"|(?<![\w:.])(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:{_IPV4}|[0-9A-Fa-f]{{1,4}}|(?<=:))"
                 r"(?:%[0-9A-Za-z]{1,16})?(?:/\d{1,3})?(?![\w:]|\.\d)"),
        check=_ip, reach=(0, 64), max_len=64,
    ),
    Family(
        "US_SSN",
        locate=(r"[0-9]{3}[ .\-][0-9]{2}[ .\-][0-9]{4}",),
        exact=_c(r"(?<![\w\-.])\d{3}(?P<s>[ .\-])\d{2}(?P=s)\d{4}(?![\w]|[\-.]\d)"),
        check=_when(lambda s, o: v.ssn_ok(s)), max_len=11,
    ),
    Family(
        "PHONE_NUMBER",
        locate=(r"[0-9](?:[ .\-()]{0,2}[0-9]){6,}\b",),
        exact=_c(rf"(?<![\w+.\-/])(?:\+ ?)?{_PHONE_GROUP}(?:(?:[ .\-]|(?<=\))){_PHONE_GROUP}){{0,7}}"
                 r"(?![\w(]|[.\-/]\d)"),
        check=_phone, reach=(3, 2), max_len=48,
    ),
)

BY_ENTITY: dict[str, Family] = {f.entity: f for f in FAMILIES}
SECRET_ENTITIES: tuple[str, ...] = tuple(f.entity for f in FAMILIES if f.secret)
ALL_ENTITIES: tuple[str, ...] = tuple(f.entity for f in FAMILIES)
# presidio's stage defaults, plus the secrets; URL is opt-in (links are everywhere in web text)
DEFAULT_ENTITIES: tuple[str, ...] = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE",
                                     "US_SSN") + SECRET_ENTITIES
