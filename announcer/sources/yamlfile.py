"""A YAML file read with the line of every key, for problems reported as `path:line`.

Whatever the file holds, reading it gives a value or a problem with its line, never an exception:
a tag whose value is impossible (`2027-02-30`, `!!bool maybe`), text no mail can carry (control
characters, lone surrogates), nesting deeper than a talk needs, bytes that are not UTF-8 text.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import GeneratorType
from typing import Any

import yaml

from announcer.errors import Problem
from announcer.sources.values import NOT_TEXT, not_text, shown

MAX_BYTES = 1024 * 1024     # a talk file with its abstracts is some KB; more is not a talk
MAX_DEPTH = 20              # mappings in mappings: a talk needs four (talks, entry, speaker, links)


class LineDict(dict):
    """A mapping that remembers the line of each key and its own first line."""

    line: int = 0
    lines: dict[str, int]


class ValueProblem(yaml.MarkedYAMLError):
    """A document YAML reads but no talk file can be (nested too deep): stops the reading."""


class _LineMappings:
    """Constructs mappings as LineDicts (a key that appears twice and nesting past MAX_DEPTH stop the
    reading) and notes in `refused` every value that cannot be, reading on."""

    _depth = 0

    def construct_mapping(self, node, deep=False):
        self._deeper(node)
        try:
            self.flatten_mapping(node)
            mapping = LineDict()
            mapping.line = node.start_mark.line + 1
            mapping.lines = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str):
                    key = str(key)
                if key in mapping:
                    raise yaml.MarkedYAMLError("while reading a mapping", node.start_mark,
                                               f'the key "{key}" appears twice', key_node.start_mark)
                mapping[key] = self.construct_object(value_node, deep=deep)
                mapping.lines[key] = key_node.start_mark.line + 1
            return mapping
        finally:
            self._depth -= 1

    def construct_list(self, node):
        """A sequence, built at once (PyYAML's generator would hide its depth)."""
        self._deeper(node)
        try:
            return [self.construct_object(child) for child in node.value]
        finally:
            self._depth -= 1

    def _deeper(self, node) -> None:
        """One level deeper (the caller steps back up): past MAX_DEPTH the reading stops."""
        if self._depth >= MAX_DEPTH:
            raise ValueProblem(None, None, f"nested more than {MAX_DEPTH} deep: a talk needs far less",
                               node.start_mark)
        self._depth += 1

    def construct_checked_str(self, node):
        """A string; one holding a control character or a lone surrogate is refused."""
        value = self.construct_scalar(node)
        if NOT_TEXT.search(value):
            return self.refuse(_line_of_character(node, value),
                               f"{not_text(value)} in the text {shown(value)}: remove it")
        return value

    def refuse(self, line: int, message: str) -> None:
        """Note a value that cannot be, and read on (every such value of a file is reported at once)."""
        self.refused.append((line, message))


def _checked(construct):
    """A tag's constructor whose errors (ValueError from date(), KeyError from !!bool ...) are refused values."""

    def checked(loader, node):
        try:
            data = construct(loader, node)
        except yaml.YAMLError:
            raise
        except Exception as error:
            return loader.refuse(node.start_mark.line + 1, _impossible(node, error))
        if isinstance(data, GeneratorType):  # !!set, !!omap ...: built later, when PyYAML resumes it
            return _refusing(loader, node, data)
        return data

    return checked


def _refusing(loader, node, generator):
    try:
        yield from generator
    except yaml.YAMLError:
        raise
    except Exception as error:
        loader.refuse(node.start_mark.line + 1, _impossible(node, error))


def _line_of_character(node: yaml.ScalarNode, value: str) -> int:
    """The line of the character NOT_TEXT finds: the value's, or in a literal block (`|`) its own."""
    if node.style != "|":
        return node.start_mark.line + 1
    return node.start_mark.line + 2 + value.count("\n", 0, NOT_TEXT.search(value).start())


def _impossible(node: yaml.Node, error: Exception) -> str:
    """The problem of a value its tag's constructor refused."""
    value = node.value if isinstance(node.value, str) else ""
    if node.tag == "tag:yaml.org,2002:timestamp":
        why = f" ({error})" if isinstance(error, ValueError) else ""
        return f"{shown(value)} is not a date or time that exists{why}: write e.g. 2027-02-21 14:00"
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    return f"{shown(value)} is not a possible {tag} value"


class _LineLoader(_LineMappings, yaml.SafeLoader):
    """The pure-Python parser: slower, and its error messages are the clearer ones."""


class _FastLineLoader(_LineMappings, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's parser where PyYAML has it: twenty times faster on a talk (SPEC 7, benchmarks/)."""


class _CheckedFastLineLoader(_FastLineLoader):
    """libyaml's parser, checking every string: for a file with escapes that can make control characters."""


for _loader in (_LineLoader, _FastLineLoader):
    for _tag, _construct in list(_loader.yaml_constructors.items()):
        if _tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
            _loader.add_constructor(_tag, _checked(_construct))
    _loader.add_constructor("tag:yaml.org,2002:map", _checked(_loader.construct_mapping))  # "!!map 0" too
    _loader.add_constructor("tag:yaml.org,2002:seq", _checked(_loader.construct_list))
for _loader in (_LineLoader, _CheckedFastLineLoader):
    _loader.add_constructor("tag:yaml.org,2002:str", _loader.construct_checked_str)


def _may_hold_controls(text: str) -> bool:
    """Whether a string read from `text` may hold what NOT_TEXT finds (str searches: a regex costs 20 ms a
    thousand talks). YAML refuses raw control characters but takes U+0085, U+2028 and U+2029 for line
    breaks (the first becomes a line feed, the others stay); anything else comes from an escape."""
    return "\\" in text or (not text.isascii() and ("\u2028" in text or "\u2029" in text))


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _yaml_problem(path: Path, text: str, error: yaml.YAMLError | RecursionError) -> Problem:
    if isinstance(error, RecursionError):  # only without libyaml, which stops at 1,000 deep
        return Problem(path, 1, "nested too deep for a talk file")
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML refuses: by line, not position
        return Problem(path, _line_of(text, error.position),
                       f"the control character U+{error.character:04X} cannot be in a YAML file")
    mark = getattr(error, "problem_mark", None)
    what = getattr(error, "problem", None) or str(error)
    if isinstance(error, ValueProblem):
        return Problem(path, mark.line + 1, what)
    context = getattr(error, "context", None)
    message = f"not valid YAML: {what}" + (f" ({context})" if context and "twice" not in what else "")
    return Problem(path, mark.line + 1 if mark else 1, message)


def read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """The YAML document in a file (or None), and any problem reading it."""
    try:
        with open(path, "rb") as file:
            if os.fstat(file.fileno()).st_size > MAX_BYTES:
                return None, [Problem(path, 1, f"larger than {MAX_BYTES // 1024} KB: not a talk file")]
            raw = file.read()
    except OSError as error:
        return None, [Problem(path, 1, f"cannot read: {error.strerror}")]
    if b"\x00" in raw:
        nul = raw.index(b"\x00")
        odd, even = raw[1::2].count(0), raw[0::2].count(0)  # UTF-16 spells ASCII with a NUL on one side
        utf16 = (odd > len(raw) // 4 and not even) or (even > len(raw) // 4 and not odd)
        why = "UTF-16 text" if utf16 else "a NUL byte: a binary file"
        return None, [Problem(path, raw.count(b"\n", 0, nul) + 1, f"not UTF-8 text ({why}); save the file as UTF-8")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, [Problem(path, raw.count(b"\n", 0, error.start) + 1,
                              f"not UTF-8 text (byte 0x{raw[error.start]:02x}); save the file as UTF-8")]
    try:
        return _load(path, text, _CheckedFastLineLoader if _may_hold_controls(text) else _FastLineLoader)
    except (yaml.YAMLError, RecursionError) as error:
        fast_error = error  # read it again with the pure-Python parser, for its wording of the problem
    try:
        return _load(path, text, _LineLoader)
    except yaml.YAMLError as error:
        return None, [_yaml_problem(path, text, error)]
    except RecursionError:  # the pure-Python composer recurses where libyaml stops at 1,000 deep
        return None, [_yaml_problem(path, text, fast_error)]


def _load(path: Path, text: str, loader_class: type) -> tuple[Any, list[Problem]]:
    """yaml.load, with the values the loader refused as problems (and then no document)."""
    loader = loader_class(text)
    loader.refused = []
    try:
        document = loader.get_single_data()
    finally:
        loader.dispose()
    if loader.refused:
        return None, [Problem(path, line, message) for line, message in sorted(dict.fromkeys(loader.refused))]
    return document, []
