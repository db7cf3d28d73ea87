"""Rules for single values from the organiser's files that reach headers, invites and one-line places.

Shared by config.py (TOML) and yamlfile.py / talks.py (YAML), so that both refuse the same things.
"""

from __future__ import annotations

import difflib
import re

# Characters no text may hold: C0 controls but tab and line feed, DEL, C1 controls, the Unicode
# line and paragraph separators (which some readers, and str.splitlines, take for line ends), and
# lone surrogates (half a character: no encoding can write them).
NOT_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# A host name (RFC 1123): dot-separated labels of letters, digits and inner hyphens, 253 at most.
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
LINK = re.compile(r"(?:https?://|mailto:)\S+")  # the links a talk or a series may give: web pages and mail
MAX_LINE = 300      # characters of a one-line value (a title, a name, a room): its header line stays short
MAX_URL = 2000      # characters of a link: it goes into the text, the HTML and the invite, never a header
MAX_ID = 200        # characters of a talk id, and of a message kind below: preview names files
MAX_KIND = 40       # ID.KIND-N.eml, which stays under the 255 bytes of a file name


def shown(value: object, limit: int = 40) -> str:
    """A value for a one-line message: text quoted with control characters escaped, anything cut short.

    Safe for any value a file can give: Python refuses to write an int of over 4,300 digits.
    """
    if isinstance(value, str):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if isinstance(value, int) and value.bit_length() > 128:
        return "a number of over 38 digits"
    try:
        text = str(value).lower() if isinstance(value, bool) else repr(value)
    except ValueError:  # a list holding such a number
        return "a value too large to show"
    return text[:limit] + ("..." if len(text) > limit else "")


def not_text(text: str) -> str | None:
    """What in `text` no text may hold ("the control character U+000B"), or None."""
    found = NOT_TEXT.search(text)
    if found is None:
        return None
    code = ord(found[0])
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate U+{code:04X} (an escape that is half a character)"
    if code in (0x2028, 0x2029):
        return f"the {'line' if code == 0x2028 else 'paragraph'} separator U+{code:04X}"
    return f"the control character U+{code:04X}"


def is_host_name(text: str) -> bool:
    """True for a host name such as "mad.example.edu"."""
    return bool(_HOST_NAME.match(text))


def did_you_mean(word: str, choices: set[str] | list[str]) -> str:
    """A ` (did you mean "x"?)` hint, or nothing when no choice is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
