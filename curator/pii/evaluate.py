"""A labelled PII evaluation set and per-type precision/recall, shared by the tests and bench/bench_pii.py.

:func:`plant` takes real documents and, with a seeded generator, inserts values of every type at known
spans (each between spaces, after a neutral lead word, sometimes in brackets or before a full stop) plus
decoys that must stay untouched: version numbers, dates and times, hashes, UUIDs, ZIP+4 codes, year
ranges, Luhn-invalid card numbers, IBANs with a wrong checksum, impossible IP addresses, SSNs from
ranges the SSA never issues, AWS's documentation key, placeholder tokens, key headers without a body,
file names with a TLD-like extension and, with ``example_domains``, addresses at example.com/.org/.net
(decoys only for a configuration that keeps those domains).

:func:`score` compares detections with the labels. For an entity type T:

- recall: planted T values covered by a detection of type T (``exact``: with exactly the planted span);
- precision: T detections that cover a planted T value, over T detections that overlap any label
  (a planted value of another type, or a decoy, counts against T). Detections that overlap no label lie
  in the original documents' own text (which has real addresses, phone numbers, ...): they are counted
  as ``unlabelled``, outside precision.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from curator.pii.engine import Detection
from curator.pii.validate import IBAN_LENGTHS, luhn


@dataclass(frozen=True)
class Label:
    doc: int
    start: int
    end: int
    entity: str | None  # None: a decoy, which no detection may touch
    kind: str  # the value's form (e.g. "amex", "e164") or the decoy's (e.g. "luhn_invalid_card")


@dataclass
class EvalSet:
    docs: list[str]
    labels: list[Label]
    inserted: list[tuple[int, int, int]] = field(default_factory=list)  # (doc, start, end) of added text

    def planted(self, entity: str) -> list[Label]:
        return [lb for lb in self.labels if lb.entity == entity]


# ------------------------------------------------------------------------------------------- values
def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _alnum(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def luhn_complete(body: str) -> str:
    """``body`` with the check digit that makes it Luhn-valid."""
    for d in "0123456789":
        if luhn(body + d):
            return body + d
    raise AssertionError("unreachable")


def _group(number: str, sizes: Sequence[int], sep: str) -> str:
    out, i = [], 0
    for s in sizes:
        out.append(number[i:i + s])
        i += s
    if i < len(number):
        out.append(number[i:])
    return sep.join(out)


CARD_PLANS = (  # (kind, prefix, length, grouping)
    ("visa", "4", 16, (4, 4, 4, 4)), ("visa13", "4", 13, (4, 3, 3, 3)),
    ("mastercard", "5", 16, (4, 4, 4, 4)), ("mastercard2", "2", 16, (4, 4, 4, 4)),
    ("amex", "37", 15, (4, 6, 5)), ("discover", "6011", 16, (4, 4, 4, 4)), ("jcb", "35", 16, (4, 4, 4, 4)),
    ("diners", "36", 14, (4, 6, 4)), ("unionpay", "62", 16, (4, 4, 4, 4)), ("mir", "220", 16, (4, 4, 4, 4)),
    ("maestro", "6759", 16, (4, 4, 4, 4)),
)


def card(rng: random.Random) -> tuple[str, str]:
    kind, prefix, length, sizes = rng.choice(CARD_PLANS)
    if kind == "mastercard":
        prefix = "5" + rng.choice("12345")
    elif kind == "mastercard2":
        prefix = str(rng.randint(2221, 2720))
    elif kind == "jcb":
        prefix = str(rng.randint(3528, 3589))
    elif kind == "mir":
        prefix = "220" + rng.choice("01234")
    number = luhn_complete(prefix + _digits(rng, length - len(prefix) - 1))
    sep = rng.choice(["", " ", "-"])
    return (number if not sep else _group(number, sizes, sep)), kind


IBAN_PLANS = {  # country: BBAN as (class, count) runs, a = capital letter, n = digit
    "DE": (("n", 18),), "FR": (("n", 23),), "ES": (("n", 20),), "IT": (("a", 1), ("n", 22)),
    "NL": (("a", 4), ("n", 10)), "GB": (("a", 4), ("n", 14)), "CH": (("n", 17),), "BE": (("n", 12),),
    "PL": (("n", 24),), "AT": (("n", 16),),
}


def iban_check(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{98 - number % 97:02d}"


def iban(rng: random.Random, wrong: bool = False) -> tuple[str, str]:
    country = rng.choice(sorted(IBAN_PLANS))
    bban = "".join(rng.choice(string.ascii_uppercase) if c == "a" else _digits(rng, 1)
                   for c, n in IBAN_PLANS[country] for _ in range(n))
    check = iban_check(country, bban)
    if wrong:
        check = f"{(int(check) + rng.randint(1, 90) - 2) % 97 + 2:02d}"
    value = country + check + bban
    assert len(value) == IBAN_LENGTHS[country]
    if rng.random() < 0.5:
        return " ".join(value[i:i + 4] for i in range(0, len(value), 4)), f"{country}_grouped"
    return value, country


PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")


def phone(rng: random.Random) -> tuple[str, str]:
    """A number that phonenumbers finds valid, in a format of its region (or international)."""
    import phonenumbers as pn

    region = rng.choice(PHONE_REGIONS)
    example = pn.example_number_for_type(region, rng.choice([pn.PhoneNumberType.FIXED_LINE,
                                                             pn.PhoneNumberType.MOBILE]))
    national = str(example.national_number)
    for _ in range(200):  # vary the subscriber digits while the number stays valid
        candidate = national[: max(3, len(national) - 4)] + _digits(rng, min(4, len(national) - 3))
        num = pn.parse(candidate, region)
        if pn.is_valid_number(num):
            break
    else:
        num = example
    style = rng.choice(["national", "international", "e164"] + (["dashes", "dots"] if region in ("US", "CA")
                                                                 else []))
    if style == "national":
        return pn.format_number(num, pn.PhoneNumberFormat.NATIONAL), f"{region}_national"
    if style == "international":
        return pn.format_number(num, pn.PhoneNumberFormat.INTERNATIONAL), f"{region}_international"
    if style == "e164":
        return pn.format_number(num, pn.PhoneNumberFormat.E164), f"{region}_e164"
    n = str(num.national_number)
    sep = "-" if style == "dashes" else "."
    return f"{n[:3]}{sep}{n[3:6]}{sep}{n[6:]}", f"{region}_{style}"


def email(rng: random.Random) -> tuple[str, str]:
    user = rng.choice(["ann", "bob.smith", "j_doe", "maria-l", "x", "first.last+tag", "k.o"])
    domain = rng.choice(["mail.debian.org", "uni-bonn.de", "gmail.com", "posteo.net", "firm.co.uk", "tu-dresden.de",
                         "lists.alioth.debian.org", "fastmail.fm", "web.de", "inria.fr"])
    return f"{user}{rng.randint(1, 999)}@{domain}", "email"


def ip(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["v4_public", "v4_private", "v4_cidr", "v6_global", "v6_link_local", "v6_full"])
    if kind == "v4_public":
        return f"{rng.choice([8, 23, 81, 130, 151, 203])}.{rng.randint(0, 255)}.{rng.randint(0, 255)}." \
               f"{rng.randint(1, 254)}", kind
    if kind == "v4_private":
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}", kind
    if kind == "v4_cidr":
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.0/{rng.choice([16, 24])}", kind
    if kind == "v6_global":
        return f"2a01:4f8:{rng.randint(1, 0xffff):x}::{rng.randint(1, 0xffff):x}", kind
    if kind == "v6_link_local":
        return f"fe80::{rng.randint(1, 0xfff):x}:{rng.randint(1, 0xffff):x}:{rng.randint(1, 0xffff):x}", kind
    return ":".join(f"{rng.randint(0x1000, 0xffff):x}" for _ in range(8)), kind


def ssn(rng: random.Random) -> tuple[str, str]:
    area = rng.choice([rng.randint(1, 665), rng.randint(667, 899)])
    value = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    return value, "ssn"


def url(rng: random.Random) -> tuple[str, str]:
    host = rng.choice(["https://www.debian.org", "http://bugs.debian.org", "https://github.com", "www.kernel.org",
                       "https://docs.python.org", "ftp://ftp.gnu.org"])
    path = rng.choice(["", "/", f"/doc/{rng.randint(1, 99)}/index.html", f"/user{rng.randint(1, 99)}/repo",
                       f"/cgi-bin/bugreport.cgi?bug={rng.randint(10000, 999999)}"])
    return host + path, "url"


_B32 = string.ascii_uppercase + "234567"
_B64 = string.ascii_letters + string.digits + "+/"


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def secret(rng: random.Random, entity: str) -> tuple[str, str]:
    if entity == "AWS_ACCESS_KEY":
        return rng.choice(["AKIA", "ASIA"]) + _alnum(rng, 16, _B32), "aws_access_key"
    if entity == "AWS_SECRET_KEY":
        return _alnum(rng, 40, _B64), "aws_secret_key"
    if entity == "GITHUB_TOKEN":
        return "gh" + rng.choice("pousr") + "_" + _alnum(rng, 36), "github_token"
    if entity == "SLACK_TOKEN":
        return f"xoxb-{_digits(rng, 12)}-{_digits(rng, 13)}-{_alnum(rng, 24)}", "slack_token"
    if entity == "PRIVATE_KEY":
        kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
        body = base64.b64encode(rng.randbytes(rng.randint(120, 400))).decode()
        lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
        return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----", "private_key"
    if entity == "JWT":
        header = _b64url({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"})
        payload = _b64url({"sub": str(rng.randint(1, 10**9)), "iat": rng.randint(1_500_000_000, 1_800_000_000)})
        return f"{header}.{payload}.{_alnum(rng, 43, string.ascii_letters + string.digits + '-_')}", "jwt"
    raise ValueError(entity)


GENERATORS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "EMAIL_ADDRESS": email, "PHONE_NUMBER": phone, "CREDIT_CARD": card, "IP_ADDRESS": ip, "IBAN_CODE": iban,
    "US_SSN": ssn, "URL": url,
    **{e: (lambda rng, e=e: secret(rng, e)) for e in ("AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN",
                                                       "SLACK_TOKEN", "PRIVATE_KEY", "JWT")},
}
LEADS = {"AWS_SECRET_KEY": ("aws_secret_access_key = ", "AWS_SECRET_ACCESS_KEY=", '"SecretAccessKey": "')}


# ------------------------------------------------------------------------------------------- decoys
def decoy(rng: random.Random, example_domains: bool) -> tuple[str, str]:
    kinds = ["version", "kernel_version", "date", "date_eu", "datetime", "time", "sha1", "sha256", "md5", "uuid",
             "zip4", "year_range", "luhn_invalid_card", "bad_iban", "bad_ipv4", "dotted_version", "ssn_never",
             "aws_example", "token_placeholder", "key_without_body", "file_name", "bare_digits"]
    if example_domains:
        kinds.append("example_domain")
    kind = rng.choice(kinds)
    if kind == "version":
        return f"{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 20)}", kind
    if kind == "kernel_version":
        return f"{rng.randint(4, 6)}.{rng.randint(0, 19)}.0-{rng.randint(10, 200)}-amd64", kind
    if kind == "date":
        return f"{rng.randint(1995, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", kind
    if kind == "date_eu":
        return f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(1995, 2025)}", kind
    if kind == "datetime":
        return (f"{rng.randint(1995, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"), kind
    if kind == "time":
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}", kind
    if kind in ("sha1", "sha256", "md5"):
        return _alnum(rng, {"sha1": 40, "sha256": 64, "md5": 32}[kind], "0123456789abcdef"), kind
    if kind == "uuid":
        h = _alnum(rng, 32, "0123456789abcdef")
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", kind
    if kind == "zip4":
        return f"{rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}", kind
    if kind == "year_range":
        a = rng.randint(1990, 2020)
        return f"{a}-{rng.randint(a + 1, 2025)}", kind
    if kind == "luhn_invalid_card":
        number = luhn_complete("4" + _digits(rng, 14))
        number = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
        return rng.choice([number, " ".join(number[i:i + 4] for i in range(0, 16, 4))]), kind
    if kind == "bad_iban":
        return iban(rng, wrong=True)[0], kind
    if kind == "bad_ipv4":
        return rng.choice([f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
                           f"1.{rng.randint(2, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"]), kind
    if kind == "dotted_version":
        return f"{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(1000, 30000)}.{rng.randint(1, 999)}", kind
    if kind == "ssn_never":
        return rng.choice([f"000-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
                           f"666-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
                           f"{rng.randint(100, 899)}-00-{rng.randint(1000, 9999)}",
                           f"{rng.randint(900, 999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"]), kind
    if kind == "aws_example":
        return "AKIAIOSFODNN7EXAMPLE", kind
    if kind == "token_placeholder":
        return rng.choice(["ghp_" + "x" * 36, "xoxb-000000000000-0000000000000-" + "x" * 24]), kind
    if kind == "key_without_body":
        return "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----", kind
    if kind == "file_name":
        return rng.choice(["setup.py", "README.md", "configure.sh", "main.rs", "index.php", "notes.am"]), kind
    if kind == "bare_digits":
        return _digits(rng, rng.choice([7, 8, 9])), kind
    user = rng.choice(["ann", "bob", "user", "jdoe"])
    return f"{user}@{rng.choice(['example.com', 'example.org', 'mail.example.net'])}", kind


# -------------------------------------------------------------------------------------------- plant
DECOY_LEADS = ("version", "on", "id", "see", "was", "at", "file", "build", "ref")
VALUE_LEADS = ("contact", "call", "number", "see", "id", "at", "to", "key", "from")


def plant(base: Sequence[str], seed: int = 0, entities: Iterable[str] = tuple(GENERATORS),
          values_per_doc: tuple[int, int] = (1, 4), decoys_per_doc: tuple[int, int] = (1, 3),
          example_domains: bool = False) -> EvalSet:
    """Copies of ``base`` documents with planted values of ``entities`` and decoys at known spans."""
    rng = random.Random(seed)
    entities = list(entities)
    docs: list[str] = []
    labels: list[Label] = []
    inserted: list[tuple[int, int, int]] = []
    for d, text in enumerate(base):
        inserts: list[tuple[str | None, str, str]] = []
        for _ in range(rng.randint(*values_per_doc)):
            entity = rng.choice(entities)
            value, kind = GENERATORS[entity](rng)
            inserts.append((entity, value, kind))
        for _ in range(rng.randint(*decoys_per_doc)):
            value, kind = decoy(rng, example_domains)
            inserts.append((None, value, kind))
        rng.shuffle(inserts)
        cuts = sorted(rng.randrange(len(text) + 1) for _ in inserts)
        pieces, pos, out_len = [], 0, 0
        for (entity, value, kind), cut in zip(inserts, cuts, strict=True):
            while cut < len(text) and not text[cut].isspace():
                cut += 1
            cut = max(cut, pos)
            pieces.append(text[pos:cut])
            out_len += cut - pos
            pos = cut
            if entity in LEADS:
                lead = " " + rng.choice(LEADS[entity])
                before, after = "", ('"' if lead.endswith('"') else "")
            else:
                lead = " " + rng.choice(DECOY_LEADS if entity is None else VALUE_LEADS) + " "
                before, after = rng.choice([("", ""), ("", ""), ("", "."), ("", ","), ("(", ")"), ("<", ">")])
                if entity == "PRIVATE_KEY" or kind == "key_without_body":
                    lead, before, after = "\n", "", ""
            start = out_len + len(lead) + len(before)
            chunk = f"{lead}{before}{value}{after} "
            labels.append(Label(d, start, start + len(value), entity, kind))
            inserted.append((d, out_len, out_len + len(chunk)))
            pieces.append(chunk)
            out_len += len(chunk)
        pieces.append(text[pos:])
        docs.append("".join(pieces))
    return EvalSet(docs, labels, inserted)


# -------------------------------------------------------------------------------------------- score
@dataclass
class TypeScore:
    entity: str
    planted: int = 0
    found: int = 0  # planted values covered by a detection of this type
    exact: int = 0  # ... with exactly the planted span
    redacted: int = 0  # planted values covered by a detection of any type
    detections_on_labels: int = 0  # detections of this type overlapping a label
    correct: int = 0  # ... of them covering a planted value of this type
    on_decoys: int = 0  # ... of them overlapping a decoy
    unlabelled: int = 0  # detections of this type overlapping no label
    missed: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.found / self.planted if self.planted else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.detections_on_labels if self.detections_on_labels else None


def score(evalset: EvalSet, detections: Sequence[Sequence[Detection]], entities: Iterable[str],
          skip_decoys: Iterable[str] = ()) -> tuple[dict[str, TypeScore], dict[str, int]]:
    """Per-type scores of ``detections`` (one list per document) and, per decoy kind, the decoys touched.
    Decoys of a kind in ``skip_decoys`` are left out (e.g. example.com addresses for an engine that
    cannot be told to keep a domain)."""
    skip = set(skip_decoys)
    scores = {e: TypeScore(e) for e in entities}
    by_doc: dict[int, list[Label]] = {}
    for lb in evalset.labels:
        if lb.entity is None and lb.kind in skip:
            continue
        by_doc.setdefault(lb.doc, []).append(lb)
    touched: dict[str, int] = {}
    for d, labels in by_doc.items():
        dets = detections[d]
        for lb in labels:
            over = [x for x in dets if x.start < lb.end and x.end > lb.start]
            if lb.entity is None:
                if over:
                    touched[lb.kind] = touched.get(lb.kind, 0) + 1
                continue
            if lb.entity not in scores:
                continue
            sc = scores[lb.entity]
            sc.planted += 1
            covering = [x for x in over if x.start <= lb.start and x.end >= lb.end]
            if any(x.entity == lb.entity for x in covering):
                sc.found += 1
            else:
                sc.missed.append(f"{lb.kind}: {evalset.docs[d][lb.start:lb.end]!r}")
            sc.exact += any(x.entity == lb.entity and (x.start, x.end) == (lb.start, lb.end) for x in over)
            sc.redacted += bool(covering)
    for d, dets in enumerate(detections):
        labels = by_doc.get(d, [])
        for x in dets:
            sc = scores.get(x.entity)
            if sc is None:
                continue
            over = [lb for lb in labels if x.start < lb.end and x.end > lb.start]
            if not over:
                sc.unlabelled += 1
                continue
            sc.detections_on_labels += 1
            if any(lb.entity == x.entity and x.start <= lb.start and x.end >= lb.end for lb in over):
                sc.correct += 1
            if any(lb.entity is None for lb in over):
                sc.on_decoys += 1
    return scores, touched
