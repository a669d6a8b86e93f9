"""YAML written for Go's readers (Compose, helm), which read it by the 1.2 rules.

PyYAML writes by the 1.1 rules: a string such as `093849`, `642e17`, `1e5` or `0o17` is
no number there, so it goes out plain, and Compose or helm reads it back as a number (an
installation id `642e17` came back as the label `6.42e+19`). Here every string is quoted
unless it is plainly a word: starts with a letter and is none of YAML's named values.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# Named values in YAML 1.1 or 1.2 (booleans, null); any case is read as them somewhere.
_NAMED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


class Dumper(yaml.SafeDumper):
    """A SafeDumper whose strings a 1.2 reader reads back as the same strings."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    plain = _WORD.fullmatch(value) is not None and value.lower() not in _NAMED
    if plain:
        return dumper.represent_str(value)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")


Dumper.add_representer(str, _string)


def dump(data: Any, *, dumper: type[Dumper] = Dumper) -> str:
    """`data` as YAML, keys in the order given."""
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True)
