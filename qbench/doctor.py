"""``qbench doctor``: is this machine ready? Versions, caches, weights, datasets, checkpoints,
device and browser, each with what is missing and how to fix it.

Every check yields a :class:`Finding`. ``required`` findings decide the exit code (0 when
every required check passed, 1 otherwise); the others (GPU, real datasets, learned-metric
weights, a browser for the report tests) only say what would become possible.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import click

OK, WARN, FAIL = "ok", "warn", "fail"
PACKAGES = {  # distribution -> (required, why)
    "torch": (True, "tensors, every metric and model"),
    "torchvision": (True, "models and image ops"),
    "pyiqa": (True, "the conventional IQA metrics"),
    "dowhy": (True, "causal estimation and refutation"),
    "duckdb": (True, "the results store"),
    "plotly": (True, "reports"),
    "ray": (False, "the Ray engine (the local engine does not need it)"),
}
PYTHON = (3, 11)


@dataclass
class Finding:
    section: str
    name: str
    status: str  # ok, warn or fail
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def blocking(self) -> bool:
        return self.required and self.status == FAIL


Check = Callable[[], Iterator[Finding]]


# -- versions -------------------------------------------------------------------------------
def check_versions() -> Iterator[Finding]:
    py = sys.version_info[:2]
    yield Finding("versions", "python", OK if py == PYTHON else FAIL, platform.python_version(),
                  "" if py == PYTHON else f"qbench needs Python {PYTHON[0]}.{PYTHON[1]}: create "
                  f"the venv with python{PYTHON[0]}.{PYTHON[1]} -m venv .venv")
    for dist, (required, why) in PACKAGES.items():
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            yield Finding("versions", dist, FAIL if required else WARN, f"not installed ({why})",
                          f"pip install -e . (or pip install {dist})", required)
            continue
        yield Finding("versions", dist, OK, version, required=required)
    yield _torchvision_ops()


def _torchvision_ops() -> Finding:
    """The CPU-only torch wheel with an index torchvision fails here (see DESIGN.md)."""
    try:
        import torch
        import torchvision

        torchvision.ops.nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
        return Finding("versions", "torch/torchvision pair", OK, "compiled ops load")
    except Exception as exc:
        return Finding("versions", "torch/torchvision pair", FAIL,
                       f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                       "install the pinned pair: pip install torch==2.14.1 torchvision==0.29.1")


# -- caches ---------------------------------------------------------------------------------
def _writable(folder: Path) -> str | None:
    """None if a file can be created in ``folder`` (created if needed), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
        return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"


def check_caches() -> Iterator[Finding]:
    home = Path(os.environ.get("QBENCH_HOME", Path.home() / ".cache" / "qbench")).expanduser()
    why = _writable(home)
    yield Finding("caches", "QBENCH_HOME", FAIL if why else OK,
                  f"{home}" + (f" is not writable ({why})" if why else " (writable)"),
                  "set QBENCH_HOME to a writable folder" if why else "")
    import torch

    hub = Path(torch.hub.get_dir())
    why = _writable(hub)
    yield Finding("caches", "torch hub cache", WARN if why else OK,
                  f"{hub}" + (f" is not writable ({why})" if why else ""),
                  "set TORCH_HOME to a writable folder (weights you copy in go there)"
                  if why else "", required=False)
    offline = os.environ.get("HF_HUB_OFFLINE", "")
    on = offline.strip().lower() in ("1", "true", "yes", "on")
    yield Finding("caches", "HF_HUB_OFFLINE", OK if on else WARN,
                  f"HF_HUB_OFFLINE={offline or '(unset)'}" + (
                      "" if on else ": without network, learned metrics retry downloads for "
                      "minutes (the qbench command sets it to 1 unless you set it)"),
                  "" if on else "export HF_HUB_OFFLINE=1", required=False)


# -- metric weights -------------------------------------------------------------------------
def check_weights(run_check: bool = False) -> Iterator[Finding]:
    """Which pyiqa metrics can be created offline, from the catalogue's cached check."""
    from qbench.home import qbench_home
    from qbench.metrics import catalog

    cache = qbench_home() / "metrics-offline.json"
    stored = json.loads(cache.read_text()) if cache.exists() else {}
    fresh = stored.get("key") == catalog._cache_fingerprint()
    if not fresh and not run_check:
        yield Finding("weights", "pyiqa metrics", WARN,
                      "not checked since the weight caches changed (or never)",
                      "run `qbench doctor --check-weights` or `qbench metrics list` (creates "
                      "each learned metric once; minutes)", required=False)
        return
    rows = catalog.pyiqa_rows(check=True)
    ready = [r.name for r in rows if r.offline]
    missing = [r for r in rows if not r.offline]
    yield Finding("weights", "pyiqa metrics", OK,
                  f"{len(ready)} of {len(rows)} usable offline: {', '.join(ready)}",
                  required=False)
    by_cause: dict[str, list[str]] = {}
    for r in missing:  # one finding per missing file (many metrics share one backbone)
        cause = r.reason.removeprefix(r.name).lstrip(" :")
        by_cause.setdefault(cause, []).append(r.name.removeprefix("pyiqa:"))
    for cause, names in sorted(by_cause.items(), key=lambda kv: -len(kv[1])):
        yield Finding("weights", f"{len(names)} metric(s)", WARN,
                      f"not usable offline: {', '.join(names)}", cause, required=False)


# -- datasets -------------------------------------------------------------------------------
def check_datasets() -> Iterator[Finding]:
    import qbench.data as data
    from qbench.home import datasets_root

    root = datasets_root()
    for name in data.names():
        info = data.info(name)
        if info.embedded:
            yield Finding("datasets", name, OK, "embedded (generated on first use)")
            continue
        folder = root / info.default_folder
        if not folder.exists():
            yield Finding("datasets", name, WARN, f"not found at {folder}",
                          f"unpack the official release there, or set QBENCH_DATA / pass "
                          f"--root ({info.description})", required=False)
            continue
        try:
            n = len(data.load(name))
            yield Finding("datasets", name, OK, f"{n} images at {folder}", required=False)
        except Exception as exc:
            yield Finding("datasets", name, WARN, f"{folder}: {str(exc).splitlines()[0]}",
                          "fix the files named above (the loader expects the official layout)",
                          required=False)


# -- checkpoints ----------------------------------------------------------------------------
def check_checkpoints() -> Iterator[Finding]:
    from qbench.models import CheckpointError, find, verify_hash
    from qbench.models.checkpoint import SHIPPED, user_dir

    paths = sorted(SHIPPED.glob("*.pt")) + sorted(user_dir().glob("*.pt"))
    if not paths:
        yield Finding("checkpoints", "zoo", WARN, f"no checkpoints in {SHIPPED} or {user_dir()}",
                      "train them with the zoo commands", required=False)
    for pt in paths:
        try:
            prov = verify_hash(pt)
            chosen = find(pt.stem)
            shadow = "" if chosen == pt else f" (shadowed by {chosen})"
            yield Finding("checkpoints", pt.stem, OK,
                          f"{pt} sha256 {prov.sha256[:12]}… matches{shadow}")
        except CheckpointError as exc:
            yield Finding("checkpoints", pt.stem, FAIL, str(exc),
                          f"restore it (git checkout {pt.name} for a shipped one) or retrain: "
                          f"the command is in {pt.with_suffix('.json').name}")
        except Exception as exc:  # unreadable provenance json
            yield Finding("checkpoints", pt.stem, FAIL, f"{type(exc).__name__}: {exc}",
                          f"fix or remove {pt.with_suffix('.json')}")


# -- device and browser ---------------------------------------------------------------------
def check_device() -> Iterator[Finding]:
    import torch

    if torch.cuda.is_available():
        yield Finding("device", "cuda", OK, f"{torch.cuda.device_count()} GPU(s): "
                      f"{torch.cuda.get_device_name(0)}", required=False)
    else:
        yield Finding("device", "cuda", WARN, "no GPU: everything runs on CPU (trainings are "
                      "slower)", "none needed; use --device cuda on a GPU machine",
                      required=False)


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def check_browser() -> Iterator[Finding]:
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    driver = shutil.which("chromedriver")
    if browser and driver:
        yield Finding("browser", "chromium", OK, f"{browser}, driver {driver}", required=False)
    else:
        absent = [n for n, p in (("chromium", browser), ("chromedriver", driver)) if not p]
        yield Finding("browser", "chromium", WARN,
                      f"{' and '.join(absent)} not found: the browser tests of the reports skip",
                      "apt-get install chromium chromium-driver", required=False)


def run_checks(check_weights_now: bool = False) -> list[Finding]:
    """Every finding; a check that crashes is itself a failed finding (never a traceback)."""
    checks: list[tuple[str, Check]] = [
        ("versions", check_versions), ("caches", check_caches),
        ("weights", lambda: check_weights(check_weights_now)), ("datasets", check_datasets),
        ("checkpoints", check_checkpoints), ("device", check_device),
        ("browser", check_browser)]
    out: list[Finding] = []
    for section, check in checks:
        try:
            out.extend(check())
        except Exception as exc:
            home_broken = any(f.name == "QBENCH_HOME" and f.blocking for f in out)
            if home_broken:  # the later checks read caches under QBENCH_HOME
                out.append(Finding(section, "check", WARN, "skipped: QBENCH_HOME is unusable",
                                   "fix QBENCH_HOME (above) first", required=False))
            else:
                out.append(Finding(section, "check", FAIL, f"the check crashed: "
                                   f"{type(exc).__name__}: {exc}", "report this as a qbench bug"))
    return out


def render(findings: list[Finding]) -> str:
    mark = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}
    lines, section = [], None
    for f in findings:
        if f.section != section:
            section = f.section
            lines.append(f"{section}:")
        lines.append(f"  [{mark[f.status]}] {f.name}: {f.detail}")
        if f.fix and f.status != OK:
            lines.append(f"         fix: {f.fix}")
    blocking = [f for f in findings if f.blocking]
    warned = sum(f.status == WARN for f in findings)
    lines.append(f"{len(blocking)} required check(s) failed, {warned} warning(s)" if blocking
                 else f"everything required is fine ({warned} warning(s))")
    return "\n".join(lines)


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--check-weights", is_flag=True,
              help="Try every learned metric offline if the cached answer is stale (minutes).")
def doctor_cmd(as_json: bool, check_weights: bool) -> None:
    """Check versions, caches, weights, datasets, checkpoints, device and browser; print what
    is missing and how to fix it. Exit code 0 when everything required is fine, else 1."""
    findings = run_checks(check_weights)
    ok = not any(f.blocking for f in findings)
    if as_json:
        click.echo(json.dumps({"ok": ok, "findings": [asdict(f) for f in findings]}, indent=2))
    else:
        click.echo(render(findings))
    sys.exit(0 if ok else 1)
