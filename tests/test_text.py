"""Text for message bodies: filling to a width, Mailman-guarded lines, and Markdown as text and HTML."""

from __future__ import annotations

import random
import textwrap

from announcer.message import command_word
from announcer.text import (_MARKDOWN, _SETEXT_UNDERLINE, _fill, _parsed, field, markdown_html, markdown_text,
                            one_line, wrap)


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
        "> quoted\n"
        ">")
    assert markdown_text(None) == "" and markdown_html("") == ""


def test_setext_headings_are_found_wherever_a_line_can_underline_one():
    for source in ("Title\n=====\n\nText.", "Title\n---  \nText.", "Title\r\n===\t\r\n", "Title\r---",
                   "> Quoted title\n> ---\n", "- Item title\n  ===\n", "Title\n   ==="):
        assert "<h1>" in markdown_html(source) or "<h2>" in markdown_html(source), source


def test_markdown_parses_alike_with_and_without_the_setext_rule_where_no_line_can_underline():
    rng = random.Random(2)
    lines = ["Plain words and more words.", "*emphasis* and `code` and [a link](https://x.org/a-b)",
             "- a list item", "1. numbered", "> quoted", "    indented code", "```", "# Heading", "",
             "well-known state-of-the-", "a = b", "x -- y", "***", "Title", "===", "---", "  - -  ",
             "\t===", "tab after\t-\t", "crlf ends\r", "---\r", "lone cr\r===", "nul \0 -", "\0==="]
    without_rule = 0
    for _ in range(400):
        source = "\n".join(rng.choice(lines) for _ in range(rng.randrange(1, 12)))
        without_rule += not _SETEXT_UNDERLINE.search(source)
        assert _parsed(source) == tuple(_MARKDOWN.parse(source)), source
    assert 50 < without_rule < 350  # both parsers were used


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


def test_helpers_take_a_width_a_template_computed_as_a_float():
    text = "word " * 30
    assert wrap(text, 60.0) == wrap(text, 60) and wrap(text, 0.5) == "\n".join(["word"] * 30)
    assert field("Where", text, 60.0) == field("Where", text, 60)
    assert one_line(text, 30.0) == one_line(text, 30)
    assert field("Where", "  ", [1]) == "" and field(None, None) == ""  # no value: nothing else is read


def test_wrapped_lines_never_begin_with_a_mailman_command_word():
    seen_without_guard = False
    for count in range(1, 40):
        value = "word " * count + "who needs theory, help set the end"
        plain = textwrap.wrap(value, 62)
        seen_without_guard |= any(command_word(line) for line in plain[1:])
        for line in field("Title", value).splitlines():
            assert command_word(line) is None, line
    assert seen_without_guard  # the test really exercised the guard


def test_fill_wraps_exactly_as_textwrap_does():
    rng = random.Random(72)
    words = ["a", "of", "the", "signal", "propagation", "https://example.edu/a/very/long/link/that/never/breaks",
             "Zdeborová", "x" * 30, "-", "well-known", "—"]
    for _ in range(3000):
        text = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 40)))
        width = rng.choice([1, 5, 10, 20, 40, 72, 100])
        first, rest = rng.choice([("", ""), ("Title:    ", " " * 10), ("- ", "  "), ("> " * 12, "> " * 12)])
        expected = textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest,
                                 break_long_words=False, break_on_hyphens=False)
        assert _fill(text, width, first, rest) == expected, (text, width, first, rest)
