"""The URLs an article cites: references, external links, citation templates; not archive
copies, not Wikimedia's own sites."""

from __future__ import annotations

from pipeline.text.cited_urls import cited_urls, url_key

ARTICLE = """'''Harbour''' is a town.<ref>{{cite web |url=https://www.example.org/history/ |title=History
|archive-url=https://web.archive.org/web/2019/https://www.example.org/history/ |archive-date=2019}}</ref>
It has a port.<ref>[http://port.example.com/about?id=3 About the port].</ref> See also
[[Port|the port]] and [https://en.wikipedia.org/wiki/Port the article] ([//commons.wikimedia.org/x]).
Visit https://visit.example.net/guide, or [//maps.example.org/town map].
{{cite book |title=Ships |chapter-url=https://books.example.com/ships#ch2}}
== External links ==
* [https://www.example.org/history/ Official history]
"""


def test_references_external_links_and_template_urls_are_cited_once_each() -> None:
    assert cited_urls(ARTICLE) == [
        "https://www.example.org/history/",
        "http://port.example.com/about?id=3",
        "https://visit.example.net/guide",
        "https://maps.example.org/town",
        "https://books.example.com/ships#ch2",
    ]


def test_no_urls_in_plain_wikitext() -> None:
    assert cited_urls("A [[link]] and {{template|a=b}} and a // comment.") == []


def test_url_key_matches_the_forms_of_one_page() -> None:
    assert url_key("https://www.Example.org/a/#top") == url_key("http://example.org/a") == "example.org/a"
    assert url_key("<https://example.org/a?x=1>") == "example.org/a?x=1"
    assert url_key("https://example.org/a?x=1") != url_key("https://example.org/a?x=2")


def test_a_url_takes_in_the_http_scheme_right_before_its_slashes_in_any_case() -> None:
    text = ("See HTTPS://Upper.example.org/x. xhttp://glued.example.org http:http://twice.example.org "
            "ftp://files.example.org")
    assert cited_urls(text) == [
        "HTTPS://Upper.example.org/x",
        "http://glued.example.org",
        "http://twice.example.org",
        "https://files.example.org",  # not an http scheme: a protocol-relative URL, read as https
    ]
