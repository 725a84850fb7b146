"""Reading a config file: `load_config` and `parse_config`, and `ConfigError`, which names the file and the
path of every problem as the operator reads the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dcwatch.config.checks import CHECK_KINDS
from dcwatch.config.fields import CONFIG_FOLDER
from dcwatch.config.schema import Config
from dcwatch.config.validation import cross_problems


class ConfigError(Exception):
    """A config file that cannot be used; `problems` lists (path, message) for every error."""

    def __init__(self, file: str, problems: list[tuple[str, str]]):
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {path}: {msg}" for path, msg in problems))


def _loc(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the operator reads the file: `services[0].sites.dc-a.checks[1].url`."""
    path = ""
    for i, part in enumerate(loc):
        check_tag = part in CHECK_KINDS and i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] == "checks"
        if isinstance(part, int):
            path += f"[{part}]"
        elif check_tag or part in ("function-after", "tagged-union") or "[" in str(part):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


def parse_config(data: Any, file: str = "<config>", folder: Path | None = None) -> Config:
    """`folder`: where relative paths in the config (`ca_file`) are; the current directory if None."""
    try:
        return Config.model_validate(data, context={CONFIG_FOLDER: folder} if folder is not None else None)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "value_error" and not err["loc"]:
                for part in message.split("; "):
                    path, _, msg = part.partition(": ")
                    problems.append((path, msg))
            else:
                problems.append((_loc(err["loc"]), message))
        if not any(err["type"] == "value_error" and not err["loc"] for err in exc.errors()):
            problems += [tuple(p.partition(": ")[::2]) for p in cross_problems(data)]  # type: ignore[misc]
        raise ConfigError(file, problems) from None


def _read_yaml(text: str, checked: bool) -> Any:
    """`yaml.safe_load`; for a `checked` file through libyaml where PyYAML has it (a tenth of the time, at
    every cold start). libyaml accepts a little the Python loader refuses (a tab after `key:`), so only a file
    the Python loader read before goes that way; one libyaml refuses is read again by the Python loader."""
    fast = getattr(yaml, "CSafeLoader", None)
    if checked and fast is not None:
        try:
            return yaml.load(text, Loader=fast)  # noqa: S506 - CSafeLoader is the safe loader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def load_config(path: str | Path, *, checked: bool = False) -> Config:
    """`checked`: the file passed `load_config` before (the synth's, which the config layer ships; the local
    runtime's), so it may be read the fast way; the validation is the same."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, [("(file)", exc.strerror or str(exc))]) from None
    try:
        data = _read_yaml(text, checked)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(file, [(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(file, [("(top level)", "expected a mapping of settings")])
    return parse_config(data, file, Path(path).parent)


def config_schema() -> dict[str, Any]:
    return Config.model_json_schema()
