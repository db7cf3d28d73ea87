"""A YAML file read with the line of every key, for problems reported as `path:line`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from announcer.errors import Problem


class LineDict(dict):
    """A mapping that remembers the line of each key and its own first line."""

    line: int = 0
    lines: dict[str, int]


class _LineMappings:
    """Constructs mappings as LineDicts, refusing a key that appears twice."""

    def construct_mapping(self, node, deep=False):
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


class _LineLoader(_LineMappings, yaml.SafeLoader):
    """The pure-Python parser: slower, and its error messages are the clearer ones."""


class _FastLineLoader(_LineMappings, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's parser where PyYAML has it: twenty times faster on a talk (SPEC 7, benchmarks/)."""


for _loader in (_LineLoader, _FastLineLoader):
    _loader.add_constructor("tag:yaml.org,2002:map", _loader.construct_mapping)


def _yaml_problem(path: Path, error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None)
    what = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    message = f"not valid YAML: {what}" + (f" ({context})" if context and "twice" not in what else "")
    return Problem(path, mark.line + 1 if mark else None, message)


def read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """The YAML document in a file (or None), and any problem reading it."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        return None, [Problem(path, None, f"cannot read: {error.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        return None, [Problem(path, line, f"not UTF-8 text (byte 0x{raw[error.start]:02x}); save the file as UTF-8")]
    try:
        return yaml.load(text, Loader=_FastLineLoader), []
    except yaml.YAMLError:
        pass  # read it again with the pure-Python parser, for its wording of the problem
    try:
        return yaml.load(text, Loader=_LineLoader), []
    except yaml.YAMLError as error:
        return None, [_yaml_problem(path, error)]
