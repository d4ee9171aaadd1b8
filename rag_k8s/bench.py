"""`rag-k8s bench`: run the benchmark modules and write BENCHMARKS.md."""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Sequence

from . import __version__
from .config import Settings
from .errors import InvalidRequest

log = logging.getLogger(__name__)


def discover() -> list[ModuleType]:
    """The benchmark modules of `rag_k8s.benchmarks`, in name order."""
    from . import benchmarks

    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)
                   if not m.name.startswith("_"))
    mods = [importlib.import_module(f"{benchmarks.__name__}.{n}") for n in names]
    return [m for m in mods if hasattr(m, "NAME") and hasattr(m, "run")]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_gib() -> str:
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB"
    except (ValueError, OSError, AttributeError):
        return "unknown"


def machine_header() -> str:
    """The Markdown lines that say where and when the figures were measured."""
    return "\n".join([
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Platform: {platform.platform()}",
        f"- CPU: {_cpu_model()} ({os.cpu_count()} cores visible)",
        f"- Memory: {_memory_gib()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- rag-k8s: {__version__}",
    ])


def run(output: Path, only: str | Sequence[str] | None = None,
        settings: Settings | None = None) -> str:
    """Run the benchmarks (all, or those named in `only`), write `output` and return its text.

    A benchmark that raises is reported as failed in its section, never silently dropped.
    """
    settings = settings or Settings.resolve()
    modules = discover()
    if only is not None:
        wanted = [only] if isinstance(only, str) else list(only)
        known = {m.NAME for m in modules}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise InvalidRequest("only", f"no benchmark named {', '.join(unknown)}; "
                                          f"choose from {', '.join(sorted(known))}")
        modules = [m for m in modules if m.NAME in wanted]
    sections = []
    for mod in modules:
        title = getattr(mod, "TITLE", mod.NAME)
        log.info("benchmark %s ...", mod.NAME)
        started = time.perf_counter()
        try:
            body = str(mod.run(settings)).strip()
        except Exception as e:  # noqa: BLE001 - one failed section must not hide the others
            last = traceback.extract_tb(e.__traceback__)[-1]
            body = (f"**FAILED**: `{type(e).__name__}: {e}` "
                    f"(at {Path(last.filename).name}:{last.lineno})")
        sections.append(f"## {title}\n\n{body}\n\n"
                        f"_Section `{mod.NAME}` took {time.perf_counter() - started:.1f} s._\n")
    output = Path(output)
    if only is not None and output.exists():
        # Only some sections were run: keep the others, and say which were re-measured when.
        text = merge_sections(output.read_text("utf-8"), sections)
    else:
        text = "# rag-k8s benchmarks\n\n" + machine_header() + "\n\n" + "\n".join(sections)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output)
    return text


def merge_sections(existing: str, sections: list[str]) -> str:
    """`existing` with the sections of the same title replaced (or appended), each re-measured
    one carrying its own machine header, since the file's header dates the other sections."""
    head, *old = existing.split("\n## ")
    by_title = {chunk.split("\n", 1)[0]: "## " + chunk.rstrip() + "\n" for chunk in old}
    stamp = machine_header()
    for section in sections:
        title, body = section[3:].split("\n", 1)
        by_title[title] = (f"## {title}\n\n_Re-measured alone (`rag-k8s bench --only`); "
                           f"the header above dates the other sections. This run:_\n\n"
                           f"{stamp}\n{body.rstrip()}\n")
    return head.rstrip() + "\n\n" + "\n".join(by_title.values())
