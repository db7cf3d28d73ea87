"""Text for message bodies: filling to a width and Mailman-guarded lines."""

from __future__ import annotations

import random
import textwrap

from announcer.compose.fill import _fill, field, wrap
from announcer.compose.mailman import command_word
from announcer.compose.markdown import one_line


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
