"""What makes Mailman hold a post for a moderator: command words near the top, and size (SPEC 4.3)."""

from __future__ import annotations

# Words Mailman takes for a command at the start of the Subject or of one of the first lines
# of the text (MM2 Utils.is_administrivia, MM3 rules/administrivia.py and the -request
# commands); a match holds the post for moderation. standards.md section E, SPEC 4.3.
MAILMAN_COMMANDS = frozenset({
    "confirm", "echo", "end", "help", "info", "join", "leave", "lists", "options", "password",
    "remove", "set", "stop", "subscribe", "unsubscribe", "who",
})
COMMAND_LINES = 10  # how many lines of the text Mailman reads for a command


def command_word(line: str) -> str | None:
    """The Mailman command word a line begins with, or None."""
    words = line.split(maxsplit=1)
    return words[0].lower() if words and words[0].lower() in MAILMAN_COMMANDS else None


def size_warnings(size: int, max_size: int) -> list[str]:
    """A warning when a message of `size` bytes is over the list's limit."""
    if size <= max_size:
        return []
    return [f"the message is {size / 1024:.1f} KB, over the list's limit of "
            f"{max_size / 1024:.0f} KB: Mailman holds it for a moderator"]


def command_warnings(subject: str, text: str) -> list[str]:
    """A warning for a Mailman command word at the start of the subject or of a first line of text."""
    warnings = []
    if word := command_word(subject):
        warnings.append(f'the Subject begins with "{word}", a Mailman command word: '
                        "the list may hold the post")
    # The first ten lines that are not blank: MM3 counts blank lines, MM2 does not.
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    for number, line in lines[:COMMAND_LINES]:
        if word := command_word(line):
            warnings.append(f'text line {number} begins with "{word}", a Mailman command word: '
                            "the list may hold the post (reword it)")
    return warnings
