"""Top-level domains from the public-suffix snapshot bundled in the ``tldextract`` wheel, read offline.

Only the file is read (``tldextract/.tld_set_snapshot``, Mozilla's public suffix list as of the wheel's
release); no ``TLDExtract`` object is made, so nothing can try the network. A TLD is the last label of
a rule of the list's ICANN section; internationalized ones are kept in both Unicode and ``xn--`` form.
"""

from __future__ import annotations

import functools
from importlib import resources

SNAPSHOT = ".tld_set_snapshot"
_BEGIN, _END = "===BEGIN ICANN DOMAINS===", "===END ICANN DOMAINS==="


def parse_suffix_list(text: str) -> frozenset[str]:
    """Lower-case top-level labels of the ICANN rules of a public suffix list (``*.`` and ``!`` rules
    count by their last label)."""
    out: set[str] = set()
    section = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("//"):
            if _BEGIN in line:
                section = True
            elif _END in line:
                break
            continue
        if not section or not line:
            continue
        label = line.split()[0].lstrip("!").rsplit(".", 1)[-1].lower()
        if label and label != "*":
            out.add(label)
            if not label.isascii():
                try:
                    out.add(label.encode("idna").decode("ascii"))
                except UnicodeError:
                    pass
    return frozenset(out)


@functools.cache
def tlds() -> frozenset[str]:
    """The TLD set of the bundled snapshot (read once per process)."""
    text = resources.files("tldextract").joinpath(SNAPSHOT).read_text(encoding="utf-8")
    found = parse_suffix_list(text)
    if len(found) < 1000:  # the real list has ~1,450 TLDs: a truncated or changed file is an error
        raise RuntimeError(f"tldextract's {SNAPSHOT} gave only {len(found)} TLDs")
    return found


def is_tld(label: str) -> bool:
    return label.lower() in tlds()
