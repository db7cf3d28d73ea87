"""Markdown as plain text and as HTML: CommonMark, with raw HTML and links to scripts kept as text."""

from __future__ import annotations

import random
import re

import pytest

from announcer import markdown
from announcer.markdown import markdown_html, markdown_text, one_line


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


# The expected HTML is what markdown-it-py 4.3 (raw HTML off), which this tool used before,
# renders for the same source: quotes in text aside, which it wrote as &quot;.
def test_raw_html_shows_as_text_in_both_parts():
    cases = {
        "Bold <b>claims</b> and a <!-- note --> here.":
            ("<p>Bold &lt;b&gt;claims&lt;/b&gt; and a &lt;!-- note --&gt; here.</p>\n",
             "Bold <b>claims</b> and a <!-- note --> here."),
        "<script>alert(1)</script>": ("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n", "<script>alert(1)</script>"),
        # an HTML block is a paragraph, Markdown inside it included
        "<div>\n*Deep* nets\n</div>": ("<p>&lt;div&gt;\n<em>Deep</em> nets\n&lt;/div&gt;</p>\n", "<div> Deep nets </div>"),
        # the block's other lines keep their links, and their own tags are text too
        "</div>\n<https://example.org/x> and <b>\n\nNext.":
            ('<p>&lt;/div&gt;\n<a href="https://example.org/x">https://example.org/x</a> and &lt;b&gt;</p>\n'
             "<p>Next.</p>\n", "</div> https://example.org/x and <b>\n\nNext."),
        # once the tag is text, its backtick opens a code span, which holds the next tag as code
        '<span title="`">x</span> `y <b>z</b>`':
            ('<p>&lt;span title="<code>"&gt;x&lt;/span&gt; </code>y &lt;b&gt;z&lt;/b&gt;`</p>\n',
             '<span title="">x</span> y <b>z</b>`'),
    }
    for source, (html, text) in cases.items():
        assert markdown_html(source) == html, source
        assert markdown_text(source) == text, source


def test_links_to_scripts_files_and_data_stay_text():
    source = ("[click](javascript:alert(1)) [v](VBScript:x) [f](file:///etc/passwd) [d](data:text/html,x) "
              "![i](javascript:x) <javascript:alert(1)> [e](&#106;avascript:x) [g](javascript\\:y) "
              "![ok](data:image/png;base64,AA) [fine](https://example.org/)")
    assert markdown_html(source) == (
        "<p>[click](javascript:alert(1)) [v](VBScript:x) [f](file:///etc/passwd) [d](data:text/html,x) "
        "![i](javascript:x) &lt;javascript:alert(1)&gt; [e](javascript:x) [g](javascript:y) "
        '<img src="data:image/png;base64,AA" alt="ok" /> <a href="https://example.org/">fine</a></p>\n')
    assert markdown_text(source, width=0) == (
        "[click](javascript:alert(1)) [v](VBScript:x) [f](file:///etc/passwd) [d](data:text/html,x) "
        "![i](javascript:x) <javascript:alert(1)> [e](javascript:x) [g](javascript:y) ok fine <https://example.org/>")


def test_no_source_gets_raw_html_or_a_script_link_into_the_html():
    rng = random.Random(23)
    pieces = ["Plain words.", "*em* and `code`", "<b>bold</b>", "<div>", "</div>", "<!-- c -->", "<?php x ?>",
              "<![CDATA[x]]>", "<script>", "a `tick <i>x</i>` b", '<span title="`">x</span>', "`", "- item",
              "> quote", "    code <b>", "", "[a](javascript:x)", "![i](data:text/html,x)", "<javascript:x>",
              "[r]: javascript:y", "[r]", "<https://ok.example/>", "[ok](https://ok.example/ 'T')", "é <é>",
              '<i title="[">', "a](http://x/<b>)", "[v](VBScript:x)", "[f](file:///x)", "<p>para</p>", "\ufdd0"]
    own_tag = re.compile(r"</?(?:p|em|strong|code|pre|a|img|ul|ol|li|blockquote|h[1-6]|hr|br)[ >/]")
    bad_address = re.compile(r"(?:href|src)=\"\s*(?:javascript|vbscript|file|data:(?!image/))", re.IGNORECASE)
    for _ in range(1500):
        source = "\n".join(rng.choice(pieces) for _ in range(rng.randrange(1, 10)))
        html, text = markdown_html(source), markdown_text(source)
        for at in (match.start() for match in re.finditer("<", html)):
            assert own_tag.match(html, at), (source, html)
        assert not bad_address.search(html), (source, html)
        assert "\ufdd0" not in html + text and "%EF%B7%90" not in html, (source, html)


def test_a_pasted_html_abstract_is_made_text_in_a_few_rounds_not_one_a_line(monkeypatch):
    rounds = []
    real = markdown._edits
    monkeypatch.setattr(markdown, "_edits", lambda *args: rounds.append(1) or real(*args))
    html = markdown_html("<div>\n<p>A paragraph of <b>it</b>.</p>\n" * 300)
    assert "<div>" not in html and html.count("&lt;p&gt;") == 300
    assert len(rounds) <= 4


def test_a_link_that_a_tag_made_text_runs_into_stays_text():
    # once the tag is text, its backtick opens a code span: the link inside is code, shown as written
    assert markdown_html('<i title="`">[a](javascript:x)`') == '<p>&lt;i title="<code>"&gt;[a](javascript:x)</code></p>\n'
    # and a link whose address holds a tag made text is text too, never an address with the mark in it
    assert markdown_html('<i title="[">a](http://x/<b>)') == '<p>&lt;i title="["&gt;a](http://x/&lt;b&gt;)</p>\n'


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
