"""Read YAML while remembering the line of every key, so errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from launchbay.domain.errors import Invalid

Path = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class SourceMap:
    """Line numbers (1-based) of the values in one YAML document, by path."""

    file: str
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of the deepest known prefix of `path` (pydantic adds union tags to paths)."""
        best = self.lines.get((), 1)
        for length in range(1, len(path) + 1):
            found = self.lines.get(tuple(path[:length]))
            if found is not None:
                best = found
        return best


class YamlError(Invalid):
    """One or more problems in a YAML file, each naming file, line and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_yaml(text: str, *, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document; duplicate keys are an error (plain PyYAML keeps the last one)."""
    source = SourceMap(file=file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlError([f"{file}:1: the file is empty"])
        return _build(node, (), loader, source), source
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else 1
        raise YamlError([f"{file}:{line}: not valid YAML: {e.problem}"]) from e
    except yaml.YAMLError as e:
        raise YamlError([f"{file}:1: not valid YAML: {e}"]) from e
    finally:
        loader.dispose()


def _build(node: yaml.Node, path: Path, loader: yaml.SafeLoader, source: SourceMap) -> Any:
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = _merged(node, path, loader, source)
        explicit: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in explicit:
                field_name = ".".join(str(p) for p in (*path, key))
                raise YamlError([f"{source.file}:{line}: {field_name}: duplicate key {key!r}"])
            explicit.add(key)
            child = (*path, str(key))
            source.lines[child] = line
            result[key] = _build(value_node, child, loader, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), loader, source) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _merged(
    node: yaml.MappingNode, path: Path, loader: yaml.SafeLoader, source: SourceMap
) -> dict[Any, Any]:
    """What the mapping's merge keys (`<<: *anchor`, `<<: [*a, *b]`) bring in; its own keys
    then override them, and of several merged mappings the first wins (YAML 1.1)."""
    merged: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE_TAG:
            continue
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for item in reversed(sources):
            if not isinstance(item, yaml.MappingNode):
                line = item.start_mark.line + 1
                where = ".".join(str(p) for p in path) or "(top)"
                raise YamlError([f"{source.file}:{line}: {where}: `<<` merges only mappings"])
            merged.update(_build(item, path, loader, source))
    return merged


def validation_problems(error: ValidationError, source: SourceMap) -> list[str]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        where = ".".join(str(p) for p in loc if not _is_union_tag(p))
        if item["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
        elif item["type"] == "missing":
            message = "required but missing"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{source.file}:{source.line_of(loc)}: {where or '(top)'}: {message}")
    return problems


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "list", "dict"})


def parse_model(text: str, *, file: str, model: type[M]) -> M:
    """Parse YAML into a pydantic model; problems name file, line and field."""
    data, source = load_yaml(text, file=file)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise YamlError(validation_problems(e, source)) from None
