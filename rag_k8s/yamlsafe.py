"""One YAML loader for every file rag-k8s trusts (org policy, cards, config.yaml).

`yaml.safe_load` keeps the last of two equal keys without a word: a policy listing `prod:` twice,
the second allowing delete, loaded silently. This loader is PyYAML's SafeLoader with one change:
a key given twice in one mapping is an error naming the key and both lines. Merge keys (`<<`)
may still be overridden by an explicit key, as YAML intends.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode


class DuplicateKeyError(ConstructorError):
    """A mapping gives the same key twice; `problem_mark` points at the second one."""

    def __init__(self, key: str, first: yaml.Mark, second: yaml.Mark) -> None:
        self.key = key
        self.first_line = first.line + 1
        self.line = second.line + 1
        super().__init__(
            None, None,
            f"duplicate key {key!r} (first given on line {self.first_line}); a key may appear "
            "only once in a mapping",
            second,
        )

    def __str__(self) -> str:  # one line, without PyYAML's "<unicode string>" mark
        return f"line {self.line}: {self.problem}"


class _RefuseDuplicates:
    """The one change to PyYAML's safe constructor: a key given twice is an error."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            _refuse_duplicates(node)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc,no-any-return]


class StrictSafeLoader(_RefuseDuplicates, yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


# libyaml's parser, when PyYAML was built with it (its wheels are), parses the 165 cards in
# ~35 ms where the pure-Python one takes ~270 ms: most of a cold CLI start. Its error messages
# differ, so a text it refuses is parsed again by StrictSafeLoader, whose message is the one shown.
if hasattr(yaml, "CSafeLoader"):
    class _FastStrictLoader(_RefuseDuplicates, yaml.CSafeLoader):  # type: ignore[misc]
        """StrictSafeLoader on libyaml's parser."""
else:  # pragma: no cover - PyYAML without libyaml
    _FastStrictLoader = StrictSafeLoader  # type: ignore[misc,assignment]


def _key_text(node: Node) -> str | None:
    if isinstance(node, ScalarNode):
        return str(node.value)
    return None  # a complex key: PyYAML's SafeLoader refuses unhashable keys itself


def _refuse_duplicates(node: MappingNode) -> None:
    seen: dict[tuple[str, str], yaml.Mark] = {}
    for key_node, _ in node.value:
        text = _key_text(key_node)
        if text is None or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        # Keys are compared by tag and text: `1` and `"1"` are different keys, `yes` and `yes`
        # the same. (Equal values spelt differently, `1` and `0x1`, are left to the schema.)
        marker = (key_node.tag, text)
        if marker in seen:
            raise DuplicateKeyError(text, seen[marker], key_node.start_mark)
        seen[marker] = key_node.start_mark


def line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the mapping key at `loc` (or of its nearest existing parent)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if not isinstance(node, MappingNode):
            break
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == str(part):
                line, node = key.start_mark.line + 1, value
                break
        else:
            break
    return line


def load(text: str) -> Any:
    """`yaml.safe_load`, refusing duplicate keys (DuplicateKeyError, a yaml.YAMLError)."""
    try:
        return yaml.load(text, Loader=_FastStrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 - raises the clearer error

