"""url_filter: hosts match their subdomains, host/path entries match path prefixes, allow mode inverts."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pytest
from pydantic import ValidationError

from curator.stages.url_filter import UrlFilter

URLS = ["http://ads.example.com/x", "https://news.org/ads/1", "https://news.org/sport", "https://EXAMPLE.com:8080/",
        "http://notexample.com/", None, "https://user@www.example.com/a", "not a url at all"]


def _table(urls):
    return pa.table({"id": [str(i) for i in range(len(urls))], "text": ["t"] * len(urls), "url": urls})


def test_block_hosts_subdomains_and_path_prefixes():
    out = UrlFilter(entries=["example.com", "www.news.org/ads/"])(_table(URLS))
    assert out.column("url_matched").to_pylist() == [
        "example.com", "news.org/ads/", None, "example.com", None, None, "example.com", None]
    assert out.column("drop_reason").to_pylist() == [
        "url_blocked", "url_blocked", None, "url_blocked", None, None, "url_blocked", None]


def test_allow_mode_and_missing_url(tmp_path):
    lst = tmp_path / "allow.txt.gz"
    with gzip.open(lst, "wt") as f:
        f.write("# our allowlist\n\nnews.org\n")
    out = UrlFilter(lists=[str(lst)], mode="allow", drop_missing_url=True)(_table(URLS))
    assert out.column("drop_reason").to_pylist() == [
        "url_not_allowed", None, None, "url_not_allowed", "url_not_allowed", "url_missing", "url_not_allowed",
        "url_not_allowed"]


def test_www_kept_when_asked_and_empty_config_refused(tmp_path):
    out = UrlFilter(entries=["www.example.com"], ignore_www=False)(_table(URLS))
    assert out.column("drop_reason").to_pylist()[6] == "url_blocked"
    assert out.column("drop_reason").to_pylist()[0] is None
    with pytest.raises(ValidationError, match="give `lists`"):
        UrlFilter()
    with pytest.raises(ValidationError, match="file not found: .*missing.txt"):
        UrlFilter(lists=[str(tmp_path / "missing.txt")])
