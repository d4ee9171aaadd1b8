"""Configuration, resolved in one place.

Precedence, highest first: an explicit keyword to `Settings.resolve`, the environment variable
(CONTRACT §10), the config file (`$RAG_K8S_HOME/config.yaml`, or `RAG_K8S_CONFIG`), the default.
The kubectl timeout has one more layer on top: a request's own `constraints.timeout` (the CLI's
`--timeout`) wins over `Settings.timeout` (see `effective_timeout`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, fields, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

PlannerChoice = Literal["auto", "template", "mlx"]

DEFAULT_MODEL = "mlx-community/Llama-3.2-3B-Instruct-4bit"
DEFAULT_TIMEOUT = 15
MIN_TIMEOUT, MAX_TIMEOUT = 1, 300  # CONTRACT §1 constraints.timeout
MAX_OUTPUT_BYTES = 64 * 1024

_PACKAGE_DIR = Path(__file__).resolve().parent
# A source checkout keeps cards/ and org/ beside the package; a wheel bundles them inside it.
_CHECKOUT_DIR = _PACKAGE_DIR.parent


def _data_dir(name: str) -> Path:
    checkout = _CHECKOUT_DIR / name
    if checkout.is_dir():
        return checkout
    return _PACKAGE_DIR / "_bundled" / name


@lru_cache(maxsize=1)
def config_file_model() -> Any:
    """The pydantic model of `config.yaml`: every key optional, unknown keys rejected.

    Built on first use: pydantic and PyYAML are imported only when a config file exists, so
    resolving the settings stays cheap for a command that needs neither.
    """
    from pydantic import BaseModel, ConfigDict, Field

    class ConfigFile(BaseModel):
        model_config = ConfigDict(extra="forbid")

        cards_dir: str | None = None
        org_dir: str | None = None
        audit_log: str | None = None
        kubectl: str | None = None
        planner: PlannerChoice | None = None
        model: str | None = None
        api_token: str | None = None
        timeout: int | None = Field(default=None, ge=MIN_TIMEOUT, le=MAX_TIMEOUT)

    return ConfigFile


# Setting name -> environment variable (CONTRACT §10).
ENV_VARS = {
    "cards_dir": "RAG_K8S_CARDS_DIR",
    "org_dir": "RAG_K8S_ORG_DIR",
    "audit_log": "RAG_K8S_AUDIT_LOG",
    "kubectl": "RAG_K8S_KUBECTL",
    "planner": "RAG_K8S_PLANNER",
    "model": "RAG_K8S_MODEL",
    "api_token": "RAG_K8S_API_TOKEN",
    "timeout": "RAG_K8S_TIMEOUT",
}


@dataclass(frozen=True)
class Settings:
    home: Path
    cards_dir: Path
    org_dir: Path
    audit_log: Path
    kubectl: str
    planner: PlannerChoice
    model: str
    api_token: str | None = field(default=None, repr=False)
    timeout: int = DEFAULT_TIMEOUT
    max_output_bytes: int = MAX_OUTPUT_BYTES

    # Cached: a warm retrieval asks for index_dir several times, and a Path join after the
    # embedding has flushed the caches costs ~20 µs (frozen dataclass: cached_property writes
    # the instance's __dict__ itself).
    @cached_property
    def index_dir(self) -> Path:
        return self.home / "index"

    @cached_property
    def models_dir(self) -> Path:
        return self.home / "models"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def resolve(cls, env: dict[str, str] | None = None, **explicit: Any) -> Settings:
        """Build the settings: explicit keywords > environment > config file > defaults."""
        env = dict(os.environ if env is None else env)
        home = Path(explicit.pop("home", None) or env.get("RAG_K8S_HOME") or "~/.rag-k8s")
        home = home.expanduser()
        file_values = _read_config_file(Path(env.get("RAG_K8S_CONFIG") or home / "config.yaml"))

        def pick(name: str) -> Any:
            if explicit.get(name) is not None:
                return explicit[name]
            var = ENV_VARS.get(name)
            if var and env.get(var):
                return env[var]
            return file_values.get(name)

        planner = pick("planner") or "auto"
        if planner not in ("auto", "template", "mlx"):
            raise ConfigError(
                f"RAG_K8S_PLANNER={planner!r} is not one of auto, template, mlx"
            )
        timeout = _timeout(pick("timeout"))
        return cls(
            home=home,
            cards_dir=Path(pick("cards_dir") or _data_dir("cards")).expanduser(),
            org_dir=Path(pick("org_dir") or _data_dir("org")).expanduser(),
            audit_log=Path(pick("audit_log") or home / "logs" / "agent.log").expanduser(),
            kubectl=str(pick("kubectl") or "kubectl"),
            planner=planner,
            model=str(pick("model") or DEFAULT_MODEL),
            api_token=pick("api_token") or None,
            timeout=int(timeout),
        )

    def kubectl_path(self) -> str | None:
        """The kubectl binary that would run, or None when it cannot be found."""
        return shutil.which(self.kubectl)

    def describe(self) -> dict[str, str]:
        """Settings for display, with the token masked."""
        out = {f.name: str(getattr(self, f.name)) for f in fields(self)}
        out["api_token"] = "set" if self.api_token else "not set"
        return out


def _timeout(value: Any) -> int:
    """A timeout setting (keyword, RAG_K8S_TIMEOUT or config.yaml) as whole seconds, 1..300."""
    if value is None or value == "":
        return DEFAULT_TIMEOUT
    try:
        seconds = int(str(value).strip())
    except ValueError:
        seconds = 0
    if not MIN_TIMEOUT <= seconds <= MAX_TIMEOUT:
        raise ConfigError(f"timeout {value!r} (RAG_K8S_TIMEOUT or config.yaml `timeout`) must be "
                          f"whole seconds from {MIN_TIMEOUT} to {MAX_TIMEOUT}")
    return seconds


def effective_timeout(request_timeout: int | None, settings: Settings) -> int:
    """The kubectl timeout of one call: the request's own > RAG_K8S_TIMEOUT > config.yaml > 15."""
    return request_timeout if request_timeout is not None else settings.timeout


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import yaml
    from pydantic import ValidationError

    from . import yamlsafe

    text = ""
    try:
        text = path.read_text(encoding="utf-8")
        data = yamlsafe.load(text) or {}  # refuses duplicate keys
        return config_file_model().model_validate(data).model_dump(exclude_none=True)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        line = yamlsafe.line_of(text, tuple(err["loc"]))
        where = f"line {line}: " if line else ""
        raise ConfigError(f"{path}: {where}{key or '(top level)'}: {err['msg']}") from None


def settings() -> Settings:
    """The settings of this process's environment, resolved afresh (cheap)."""
    return Settings.resolve()
