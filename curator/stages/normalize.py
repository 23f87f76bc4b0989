"""``normalize``: deterministic Unicode, whitespace and punctuation normalization of ``text``.

Steps, in this order, each switchable:

1. ``remove_markup`` (off): HTML/XML tags left in the text are deleted and character references
   (``&amp;``, ``&#8212;``) decoded.
2. ``nfc`` (on): Unicode NFC composition.
3. ``remove_control`` (on): control characters (C0/C1 except tab and newline) and invisible characters
   (soft hyphen, zero-width space, word joiner, BOM, Mongolian vowel separator) are deleted. Zero-width
   (non-)joiners and bidirectional marks are kept: scripts such as Persian and Arabic need them.
4. ``quotes`` (``"ascii"``): typographic single and double quotes and primes become ``'`` and ``"``;
   ``"keep"`` leaves them.
5. ``dashes`` (``"ascii"``): hyphen, dash and minus variants (U+2010..U+2015, U+2212, U+FE58, U+FE63,
   U+FF0D) become ``-``; ``"keep"`` leaves them. ``ellipsis`` (on): ``…`` becomes ``...``.
6. ``remove_emoji`` (off): emoji (characters shown as emoji by default, or followed by the emoji
   variation selector), with their skin-tone modifiers, joiner sequences and regional-indicator flags,
   are deleted; text-style symbols such as (c) and TM signs stay. ``remove_symbols`` (off): other
   symbols (Unicode So, emoji included), skin-tone modifiers and private-use characters are deleted.
7. ``whitespace`` (on): ``\\r\\n``/``\\r``/U+2028/U+2029/U+0085 become ``\\n``; other Unicode spaces and tabs
   become a space; runs of spaces collapse to one; spaces at line ends are stripped; more than one empty
   line in a row collapses to one; the text is stripped.

The stage never drops documents; a null text stays null.
"""

from __future__ import annotations

import html
import unicodedata
from typing import ClassVar, Literal

import pyarrow as pa
import regex
from pydantic import Field

from curator.stages.base import Column, Stage, StageConfig, set_column


class NormalizeConfig(StageConfig):
    remove_markup: bool = Field(False, description="delete HTML/XML tags and comments left in the text and decode "
                                "character references (&amp;, &#8212;)")
    nfc: bool = Field(True, description="apply Unicode NFC composition")
    remove_control: bool = Field(True, description="delete control characters (C0/C1 except tab and newline) and "
                                 "invisible ones (soft hyphen, zero-width space, word joiner, BOM); zero-width "
                                 "(non-)joiners and bidi marks stay")
    quotes: Literal["ascii", "keep"] = Field("ascii", description="ascii: typographic quotes and primes become ' "
                                             "and \"; keep: leave them")
    dashes: Literal["ascii", "keep"] = Field("ascii", description="ascii: hyphen, dash and minus variants become -; "
                                             "keep: leave them")
    ellipsis: bool = Field(True, description="replace \u2026 with ...")
    remove_emoji: bool = Field(False, description="delete emoji with their modifiers, joiner sequences and flags")
    remove_symbols: bool = Field(False, description="delete other symbols (Unicode So, emoji included), skin-tone "
                                 "modifiers and private-use characters")
    whitespace: bool = Field(True, description="unify line breaks to \\n, turn other spaces and tabs into one space, "
                             "strip line ends, keep at most one empty line in a row, strip the text")


_TAG_RE = regex.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]{0,2000})?/?>", regex.DOTALL)
_ENTITY_RE = regex.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CONTROL = [c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + list(range(0x7F, 0xA0))
_INVISIBLE = [0x00AD, 0x180E, 0x200B, 0x2060, 0xFEFF]
_CONTROL_TABLE = dict.fromkeys([c for c in _CONTROL if c != 0x85] + _INVISIBLE)
_QUOTE_TABLE = {
    **dict.fromkeys(map(ord, "\u2018\u2019\u201a\u201b\u2032\u2035\uff07"), "'"),
    **dict.fromkeys(map(ord, "\u201c\u201d\u201e\u201f\u2033\u2036\uff02"), '"'),
}
_DASH_TABLE = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-")
_EMOJI_RE = regex.compile(
    r"(?:[\p{Emoji_Presentation}\p{Emoji_Modifier}\p{Regional_Indicator}]|\p{Extended_Pictographic}\ufe0f)"
    r"[\ufe0f\u20e3\p{Emoji_Modifier}]*(?:\u200d\p{Extended_Pictographic}[\ufe0f\p{Emoji_Modifier}]*)*"
)
_SYMBOL_RE = regex.compile(r"[\p{So}\p{Co}\p{Emoji_Modifier}]")
_NEWLINE_RE = regex.compile(r"\r\n?|[\u2028\u2029\u0085]")
_SPACES_RE = regex.compile(r"[^\S\n]+")  # any whitespace but newline
_TRAILING_RE = regex.compile(r" +\n| +$")
_BLANK_LINES_RE = regex.compile(r"\n{3,}")


def _unescape(m: regex.Match) -> str:
    return html.unescape(m.group())


class Normalize(Stage[NormalizeConfig]):
    """Normalize Unicode, whitespace, quotes and dashes of ``text`` deterministically; never drops a document.

    See the module docstring for the steps and their order.
    """

    name: ClassVar[str] = "normalize"
    writes: ClassVar[tuple[Column, ...]] = (Column("text", "the normalized text (null stays null)"),)

    def __init__(self, config: StageConfig | None = None, **params) -> None:
        super().__init__(config, **params)
        cfg = self.config
        table: dict[int, str | None] = {}
        if cfg.remove_control:
            table.update(_CONTROL_TABLE)
        if cfg.quotes == "ascii":
            table.update(_QUOTE_TABLE)
        if cfg.dashes == "ascii":
            table.update(_DASH_TABLE)
        if cfg.ellipsis:
            table[0x2026] = "..."
        self._table = table

    def normalize(self, text: str) -> str:
        """Normalize one text (see the module docstring for the steps)."""
        cfg = self.config
        if cfg.remove_markup:
            text = _TAG_RE.sub("", text)
            if "&" in text:
                text = _ENTITY_RE.sub(_unescape, text)
        if cfg.nfc and not text.isascii():
            text = unicodedata.normalize("NFC", text)
        if self._table:
            text = text.translate(self._table)
        if cfg.remove_emoji:
            text = _EMOJI_RE.sub("", text)
        if cfg.remove_symbols:
            text = _SYMBOL_RE.sub("", text)
        if cfg.whitespace:
            text = _NEWLINE_RE.sub("\n", text)
            text = _SPACES_RE.sub(" ", text)
            text = _TRAILING_RE.sub("\n", text)
            text = _BLANK_LINES_RE.sub("\n\n", text)
            text = text.strip()
        return text

    def __call__(self, table: pa.Table) -> pa.Table:
        out = [None if t is None else self.normalize(t) for t in table.column("text").to_pylist()]
        return set_column(table, "text", pa.array(out, type=pa.string()))
