"""The pieces every section of the config is made of: the frozen model base, names, URLs, files beside the
config, conditions, and a walk over plain config data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

from dcwatch.config.conditions import parse_condition

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="lower-case, digits, '-'")]


# Every model of the core builds its validator when it first validates (`defer_build`), not at import: a cold
# start builds those of the config and of the event it parses, not all of them (`python -m bench.imports`).
class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


M = TypeVar("M", bound=BaseModel)


def unbuilt_default(model: type[M]) -> M:
    """A model's default value, made without building its validator (every field of it has a valid default)."""
    return model.model_construct()


# What a recovery does (`recovery.md`). Hooks run in the production modes unless they opt in to drills.
RecoveryMode = Literal["disaster", "migration", "drill", "failback"]
RECOVERY_MODES: tuple[RecoveryMode, ...] = ("disaster", "migration", "drill", "failback")
PRODUCTION_MODES: tuple[RecoveryMode, ...] = ("disaster", "migration", "failback")


# Where an endpoint answers from: the internet, or only over the sites' VPN/Direct Connect (from the VPC).
Reach = Literal["public", "private"]
REACH_DESCRIPTION = (
    "public: answers on the internet; private: only over the VPN/Direct Connect into the site, "
    "so only code inside `network` reaches it"
)


CONFIG_FOLDER = "config_folder"  # validation context: the folder of the file being loaded


def _beside_config(value: str | None, info: ValidationInfo) -> str | None:
    """A relative path names a file beside the config file (wherever it is read from): the synth ships the
    files beside the config file with it, so a function reads them at the same relative place in Lambda."""
    folder = (info.context or {}).get(CONFIG_FOLDER)
    if value is None or folder is None or Path(value).is_absolute():
        return value
    return str(Path(folder) / value)


CaFile = Annotated[str | None, AfterValidator(_beside_config)]
CA_FILE_DESCRIPTION = (
    "extra CA bundle (PEM) to trust besides the system's, e.g. a private CA; a relative path is relative to the "
    "config file, and ships with it to Lambda"
)


def http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"expected an http(s) URL with a host, got {value!r}")
    return value


def _parse_condition(text: str) -> str:
    parse_condition(text)
    return text


# Validated one by one, so that an error names the entry: `...checks[0].conditions[1]`.
ConditionText = Annotated[str, AfterValidator(_parse_condition)]


HEADERS_SECRET_DESCRIPTION = (
    "Secrets Manager secret id holding a JSON object of header names to values (e.g. Authorization), sent with "
    "the request on top of `headers`: the token stays out of this file"
)


def fields_named(data: Any, key: str, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every field called `key` in plain config data, with its path as the operator reads the file."""
    if isinstance(data, dict):
        for name, value in data.items():
            where = f"{path}.{name}" if path else str(name)
            if name == key:
                yield where, value
            else:
                yield from fields_named(value, key, where)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from fields_named(value, key, f"{path}[{i}]")
