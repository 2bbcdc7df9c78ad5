"""Read a YAML config and point validation errors at the line they come from."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from persona_testbed.config_errors import yaml_config_error
from persona_testbed.errors import InputError

ModelT = TypeVar("ModelT", bound=BaseModel)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at `loc` (the deepest existing one)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if match is None:
                # An unknown key: point at the key itself.
                keys = [k for k, _ in node.value if getattr(k, "value", None) == key]
                return keys[0].start_mark.line + 1 if keys else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _check_duplicate_keys(path: Path, node: yaml.Node | None) -> None:
    """YAML lets a repeated key silently win; here it is an error at the repeat's line."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key, value in node.value:
            name = getattr(key, "value", None)
            if isinstance(name, str):
                line = key.start_mark.line + 1
                if name in seen:
                    raise InputError(
                        f"{path}:{line}: {name}: duplicate key (first given on line {seen[name]})"
                    )
                seen[name] = line
            _check_duplicate_keys(path, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(path, item)


# Text fields that hold a bundled name ("us-2022", "paper") or a path to the user's own file or
# folder: a value that names an existing path next to the config means that path.
NAME_OR_PATH_FIELDS = frozenset({"rake", "templates"})


def _resolved_name_or_path(value: Any, base: Path) -> str | None:
    if not isinstance(value, str) or not value or Path(value).expanduser().is_absolute():
        return None
    candidate = base / value
    return str(candidate) if candidate.exists() else None


def _resolved(value: Any, base: Path) -> Any:
    """`value` with every relative Path made relative to `base` (recursing into models)."""
    if isinstance(value, Path):
        value = value.expanduser()
        return value if value.is_absolute() else base / value
    if isinstance(value, tuple | list):
        items = [_resolved(item, base) for item in value]
        changed = any(new is not old for new, old in zip(items, value, strict=True))
        return type(value)(items) if changed else value
    if isinstance(value, BaseModel):
        updates = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _resolved_name_or_path(old, base) if name in NAME_OR_PATH_FIELDS else None
            new = _resolved(old, base) if new is None else new
            if new is not old:
                updates[name] = new
        return value.model_copy(update=updates) if updates else value
    return value


def load_yaml_model(path: Path, model: type[ModelT]) -> ModelT:
    """Parse `path` into `model`; any error is one line naming the file, line and key.

    Relative file paths in the config are relative to the config file's folder, not to the
    directory the command runs in."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save the config as UTF-8"
        ) from None
    try:
        root = yaml.compose(text)
        _check_duplicate_keys(Path(path), root)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{path}{where}: invalid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: the config must be a mapping of settings")
    try:
        loaded = model.model_validate(data)
    except ValidationError as exc:
        raise yaml_config_error(exc, Path(path), lambda loc: _line_of(root, loc)) from None
    resolved: ModelT = _resolved(loaded, Path(path).resolve().parent)
    return resolved
