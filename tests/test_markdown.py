"""Markdown as plain text and as HTML: CommonMark, with raw HTML and links to scripts kept as text."""

from __future__ import annotations

import random
import re

import pytest

from announcer.compose import markdown
from announcer.compose.markdown import markdown_html, markdown_text, one_line


def test_markdown_to_html_and_to_wrapped_text():
    source = ("A *first* paragraph with a [link](https://example.org/x) and `code` that is long "
              "enough to need wrapping at seventy-two columns, surely.\n\n"
              "1. one\n2. two\n   - nested point\n\n> quoted\n")
    html = markdown_html(source)
    assert "<em>first</em>" in html and '<a href="https://example.org/x">link</a>' in html
    assert "<ol>" in html and "<blockquote>" in html
    assert markdown_text(source) == (
        "A first paragraph with a link <https://example.org/x> and code that is\n"
        "long enough to need wrapping at seventy-two columns, surely.\n"
        "\n"
        "1. one\n"
        "2. two\n"
        "   - nested point\n"
        "\n"
        "> quoted")
    assert markdown_text(None) == "" and markdown_html("") == ""


def test_setext_headings_are_found_wherever_a_line_can_underline_one():
    for source in ("Title\n=====\n\nText.", "Title\n---  \nText.", "Title\r\n===\t\r\n", "Title\r---",
                   "> Quoted title\n> ---\n", "- Item title\n  ===\n", "Title\n   ==="):
        assert "<h1>" in markdown_html(source) or "<h2>" in markdown_html(source), source


def test_one_line_of_abstract_is_short():
    line = one_line("In recent years, many state-of-the-art models in *deep learning* have "
                    "utilized increasingly deep architectures.")
    assert line == "In recent years, many state-of-the-art models in deep…"
    assert one_line("Short.") == "Short."


def test_one_line_reads_only_the_words_it_can_show():
    rng = random.Random(62)
    words = ["a", "deep", "*net*", "state-of-the-art", "x" * 70, "\n\n", "- item\n", "  "]
    for _ in range(500):
        source = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 80)))
        flat = " ".join(markdown_text(source, width=0).split())
        for width in (0, 1, 5, 30, 62, 200):
            expected = flat if len(flat) <= width else flat[: width - 1].rsplit(" ", 1)[0].rstrip(",;:.-") + "…"
            assert one_line(source, width) == expected, (source, width)


def test_raw_html_shows_as_text_in_both_parts():
    cases = {
        "Bold <b>claims</b> and a <!-- note --> here.":
            ("<p>Bold &lt;b&gt;claims&lt;/b&gt; and a &lt;!-- note --&gt; here.</p>\n",
             "Bold <b>claims</b> and a <!-- note --> here."),
        "<script>alert(1)</script>": ("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n", "<script>alert(1)</script>"),
        # an HTML block is a paragraph of its lines as written: Markdown inside it is raw too
        "<div>\n*Deep* nets\n</div>": ("<p>&lt;div&gt;\n*Deep* nets\n&lt;/div&gt;</p>\n", "<div> *Deep* nets </div>"),
        "</div>\n<https://example.org/x> and <b>\n\nNext.":
            ("<p>&lt;/div&gt;\n&lt;https://example.org/x&gt; and &lt;b&gt;</p>\n<p>Next.</p>\n",
             "</div> <https://example.org/x> and <b>\n\nNext."),
        # a tag inside a code span is code
        '<span title="`">x</span> `y <b>z</b>`':
            ('<p>&lt;span title="`"&gt;x&lt;/span&gt; <code>y &lt;b&gt;z&lt;/b&gt;</code></p>\n',
             '<span title="`">x</span> y <b>z</b>'),
    }
    for source, (html, text) in cases.items():
        assert markdown_html(source) == html, source
        assert markdown_text(source) == text, source


def test_links_to_scripts_files_and_data_are_only_their_text():
    source = ("[click](javascript:alert(1)) [v](VBScript:x) [f](file:///etc/passwd) [d](data:text/html,x) "
              "![i](javascript:x) <javascript:alert(1)> [e](&#106;avascript:x) [c](<\x01javascript:y>) "
              "![ok](data:image/png;base64,AA) [fine](https://example.org/) [rel](talks/x.html)")
    assert markdown_html(source) == (
        "<p>click v f d i javascript:alert(1) e c "
        '<img src="data:image/png;base64,AA" alt="ok" /> <a href="https://example.org/">fine</a> '
        '<a href="talks/x.html">rel</a></p>\n')
    assert markdown_text(source, width=0) == (
        "click v f d i javascript:alert(1) e c ok fine <https://example.org/> rel <talks/x.html>")


def test_safe_address():
    for address in ("https://x.org", "HTTP://x", "mailto:a@b.c", "x.html", "/a:b", "#top", "?q=1", ""):
        assert markdown.safe_address(address), address
    for address in ("javascript:x", " JavaScript:x", "\x01javascript:x", "java\tscript:x", "java\nscript:x",
                    "vbscript:x", "file:///etc", "data:text/html,x", "ftp://x", "data:image/png;base64,A"):
        assert not markdown.safe_address(address), address
    assert markdown.safe_address("data:image/png;base64,A", image=True)
    assert not markdown.safe_address("data:image/svg+xml;base64,A", image=True)


# Sources with no raw HTML and no unsafe address: the HTML must be pulldown-cmark's own, tag for tag.
_PIECES = ["Plain words.", "*em* and **strong** and `code`", "- item", "  - nested", "1. one", "7. seven",
           "> quote", "> > deeper", "    code line", "```py\nx = 1 < 2\n```", "~~~\nraw ~~~\n~~~", "", "",
           "# Heading *x*", "Setext\n===", "Under\n---", "***", "[a](https://ok.example/a?b=c&d=e 'T \"q\"')",
           "![img *alt* `c`](p.png \"t\")", "<https://ok.example/>", "<a@b.example>", "[r]", "[r]: /u 'R'",
           "é & ü ' \" > x", "line  \nbreak", "back\\\nslash", "[sp](<a b.html>)", "[uni](https://x/é?q=ü)",
           "a\tb", "&amp; &copy; &#35;", "* star", "+ plus", "2) paren", "[](empty)", "![]()", "\\*lit\\*",
           "[x](a`b'c{d}e|f^g[h]i\\\\j)", "[q](a \"t'&<\")", "```'x\nc\n```", "`` a ` b ``",
           "> - quoted item\n>   more", "- [link](/x)\n\n  para"]


def test_the_html_is_pulldown_cmarks_own_where_nothing_was_unsafe():
    import pyromark

    rng = random.Random(7)
    compared = 0
    for _ in range(4000):
        source = "\n".join(rng.choice(_PIECES) for _ in range(rng.randrange(1, 12)))
        events = list(pyromark.events(source))
        if any("Html" in e or "InlineHtml" in e for e in events if isinstance(e, dict)):
            continue
        compared += 1
        assert markdown_html(source) == pyromark.html(source), source
    assert compared > 3000


def test_no_source_gets_raw_html_or_a_script_link_into_the_html():
    rng = random.Random(23)
    pieces = ["Plain words.", "*em* and `code`", "<b>bold</b>", "<div>", "</div>", "<!-- c -->", "<?php x ?>",
              "<![CDATA[x]]>", "<script>", "a `tick <i>x</i>` b", '<span title="`">x</span>', "`", "- item",
              "> quote", "    code <b>", "", "[a](javascript:x)", "![i](data:text/html,x)", "<javascript:x>",
              "[r]: javascript:y", "[r]", "<https://ok.example/>", "[ok](https://ok.example/ 'T')", "é <é>",
              '<i title="[">', "a](http://x/<b>)", "[v](VBScript:x)", "[f](file:///x)", "<p>para</p>",
              "![x](<\x01javascript:y>)", '[t](https://x "a\\"><b>")', "[l](java&#09;script:x)"]
    # each "<" opens one of the writer's own tags, whose attributes are quoted and hold no "<", ">" or quote
    own_tag = re.compile(r'</?(?:p|em|strong|code|pre|a|img|ul|ol|li|blockquote|h[1-6]|hr|br)'
                         r'(?: (?:href|src|alt|title|start|class)="[^"<>]*")*(?: /)?>')
    bad_address = re.compile(r"(?:href|src)=\"[\x00-\x20]*(?:javascript|vbscript|file|data:(?!image/))",
                             re.IGNORECASE)
    for _ in range(3000):
        source = "\n".join(rng.choice(pieces) for _ in range(rng.randrange(1, 10)))
        html = markdown_html(source)
        for at in (match.start() for match in re.finditer("<", html)):
            assert own_tag.match(html, at), (source, html)
        assert not bad_address.search(html), (source, html)


@pytest.mark.parametrize("source, text", [
    ("- > quoted\n- next", "- > quoted\n\n- next"),  # an item that begins with a quote, a list or code
    ("- - inner\n- outer", "- - inner\n- outer"),     # keeps its marker
    ("1. ```\n   code\n   ```\n2. two", "1.     code\n\n2. two"),
    ("-\n- b", "-\n- b"),
    ("> > nested\n\nafter", "> > nested\n\nafter"),  # a quote ends without a stray ">" line
    ("> a\n>\n> b\n\nc", "> a\n>\n> b\n\nc"),
    ("1. one\n1. two\n1. three", "1. one\n2. two\n3. three"),  # numbers count up, as the HTML shows them
    ("3. three\n4. four", "3. three\n4. four"),
    ("![A *plot*](p.png) of it", "A plot of it"),  # an image reads as its description
])
def test_lists_quotes_code_and_images_as_text(source, text):
    assert markdown_text(source) == text
