"""The Dockerfile's builder stage, replayed without Docker: wheel + locked requirements into a fresh venv.

No Docker engine runs here, so this test reads the Dockerfile itself and carries out its builder stage: each
COPY into a scratch source tree and each `uv` RUN line verbatim (same flags, same order), with only the paths
moved (VIRTUAL_ENV, the interpreter, /data). Any instruction it does not know how to replay fails the test,
so the Dockerfile and this test cannot drift apart silently. Then it runs the installed `sync-worker` with the
runtime stage's environment.

uv runs offline first, from the cache that `make test` filled; it goes online only when the cache lacks
something (a first run on a new machine).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BOOTSTRAP_UV = ROOT / ".cache" / "bootstrap" / "bin" / "uv"
EXPORT_FLAGS = "uv export --frozen --no-dev --no-emit-project"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str


def parse_stages(text: str) -> dict[str, list[Instruction]]:
    """Dockerfile → {stage name: instructions}; continuation lines joined, comments dropped."""
    stages: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, argument = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            name = argument.split(" AS ")[-1].strip() if " AS " in argument else argument
            current = stages.setdefault(name, [])
        current.append(Instruction(keyword.upper(), argument.strip()))
    return stages


def env_pairs(argument: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in shlex.split(argument))


def makefile_uv_version() -> str:
    found = re.search(r'"uv==([^"]+)"', (ROOT / "Makefile").read_text())
    assert found, 'the Makefile pins uv as "uv==X.Y.Z"'
    return found.group(1)


def run_uv_step(command: str, cwd: Path, env: dict[str, str]) -> None:
    """Run one `uv` RUN line: offline from the cache first, online only if the cache lacks something."""
    offline = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env={**env, "UV_OFFLINE": "1"}, capture_output=True, text=True
    )
    if offline.returncode == 0:
        return
    online = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True)
    assert online.returncode == 0, f"RUN {command}\n{offline.stderr}\n{online.stderr}"


@pytest.fixture
def stages() -> dict[str, list[Instruction]]:
    return parse_stages(DOCKERFILE.read_text())


def replay_builder(stages: dict[str, list[Instruction]], scratch: Path) -> Path:
    """Replay the builder stage; return the virtual env that the runtime stage copies (/opt/venv)."""
    assert BOOTSTRAP_UV.exists(), "run `make test`: it installs the pinned uv this test uses"
    src, venv, bin_dir = scratch / "src", scratch / "venv", scratch / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "uv").symlink_to(BOOTSTRAP_UV)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "UV_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    for step in stages["builder"]:
        match step.keyword:
            case "FROM":
                assert step.argument.startswith("${PYTHON_IMAGE}")
            case "ARG":
                name, _, value = step.argument.partition("=")
                assert name == "UV_VERSION", f"unknown ARG {step.argument}"
                assert value == makefile_uv_version(), "Dockerfile and Makefile must pin the same uv"
            case "ENV":
                env.update(env_pairs(step.argument))
                # Only the places move: the venv and the interpreter that the image has at /usr/local.
                env["VIRTUAL_ENV"] = str(venv)
                env["BASE_PYTHON"] = getattr(sys, "_base_executable", sys.executable)
            case "WORKDIR":
                assert step.argument == "/src"
                src.mkdir()
            case "COPY":
                *sources, target = shlex.split(step.argument)
                for source in sources:
                    destination = src / target / source if target.endswith("/") else src / target
                    if (ROOT / source).is_dir():
                        shutil.copytree(
                            ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__")
                        )
                    else:
                        shutil.copy2(ROOT / source, destination)
            case "RUN":
                command = re.sub(r"^(--mount=\S+\s+)+", "", step.argument)
                if command.startswith("pip install"):
                    assert '"uv==${UV_VERSION}"' in command  # replaced by the bootstrap uv of that version
                    continue
                assert command.startswith("uv "), f"the test cannot replay RUN {command}"
                if command.startswith("uv pip"):
                    # An explicit target: without it uv may pick another interpreter than the venv.
                    assert '--python "$VIRTUAL_ENV"' in command, command
                run_uv_step(command, src, env)
            case _:
                pytest.fail(f"the test cannot replay {step.keyword} in the builder stage")
    return venv


def runtime_env(image: Path, stages: dict[str, list[Instruction]], data: Path) -> dict[str, str]:
    """The runtime stage's ENV, with /data moved to a scratch directory."""
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "VIRTUAL_ENV"))}
    for step in stages["runtime"]:
        if step.keyword == "ENV":
            for name, value in env_pairs(step.argument).items():
                if name.startswith("SYNC_"):
                    env[name] = value.replace("/data/", f"{data}/")
    env["PATH"] = f"{image / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    env["DATA"] = str(data)
    return env


def sync_worker(runtime_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sync-worker", *args], cwd=runtime_env["DATA"], env=runtime_env, capture_output=True, text=True
    )


def test_bootstrap_uv_is_the_version_the_dockerfile_pins() -> None:
    out = subprocess.run([BOOTSTRAP_UV, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == makefile_uv_version()


def test_dockerfile_installs_locked_dependencies_before_the_code(
    stages: dict[str, list[Instruction]],
) -> None:
    builder = [f"{s.keyword} {s.argument}" for s in stages["builder"]]
    export = next(i for i, line in enumerate(builder) if EXPORT_FLAGS in line)
    install_deps = next(i for i, line in enumerate(builder) if "-r requirements.txt" in line)
    first_code_copy = next(i for i, line in enumerate(builder) if line.startswith("COPY sync_worker"))
    assert builder[export - 1] == "COPY pyproject.toml uv.lock ./"
    assert export < install_deps < first_code_copy


def test_runtime_stage_is_a_non_root_worker_with_health_check(stages: dict[str, list[Instruction]]) -> None:
    runtime = {s.keyword: s.argument for s in stages["runtime"]}
    assert stages["runtime"][0].argument == "${PYTHON_IMAGE} AS runtime"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    assert runtime["USER"] not in ("root", "0")
    assert runtime["VOLUME"] == '["/data"]'
    assert runtime["EXPOSE"] == "8080"
    assert 'CMD ["sync-worker", "health"' in runtime["HEALTHCHECK"]
    assert runtime["ENTRYPOINT"] == '["sync-worker"]'
    assert runtime["CMD"] == '["run"]'
    env = env_pairs(" ".join(s.argument for s in stages["runtime"] if s.keyword == "ENV"))
    assert env["SYNC_DATABASE_URL"] == "sqlite:////data/sync-worker.db"
    assert env["SYNC_HTTP__HOST"] == "0.0.0.0"
    assert env["SYNC_HTTP__PORT"] == runtime["EXPOSE"]


def check_help(env: dict[str, str]) -> None:
    result = sync_worker(env, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("config", "db", "health", "demo", "run"):
        assert re.search(rf"│ {command}\s", result.stdout), command


def check_config(env: dict[str, str]) -> None:
    result = sync_worker(env, "config", "check", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["settings"]["database_url"] == f"sqlite:///{env['DATA']}/sync-worker.db"
    assert report["settings"]["http"] == {
        "host": "0.0.0.0",
        "port": 8080,
        "public_url": None,
        "shutdown_grace_seconds": 20,
        "webhook_max_age_seconds": 300,
    }
    assert report["settings"]["log_format"] == "json"
    assert not any(connector["enabled"] for connector in report["connectors"].values())

    table = sync_worker(env, "config", "check")
    assert table.returncode == 0, table.stderr
    assert "connectors" in table.stdout
    assert "SYNC_SECRET_KEY is not set" in table.stdout


def check_migrations(env: dict[str, str]) -> None:
    result = sync_worker(env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "database at revision" in result.stdout
    assert (Path(env["DATA"]) / "sync-worker.db").exists()


def check_contents(image: Path, env: dict[str, str]) -> None:
    """The packages come from the venv (not this checkout) and no development tool came along."""
    probe = (
        "import importlib.util, json, config, connectors, sync_worker;"
        "print(json.dumps([config.__file__, connectors.__file__, sync_worker.__file__,"
        " importlib.util.find_spec('pytest') is None]))"
    )
    result = subprocess.run(
        [image / "bin" / "python", "-c", probe], cwd=env["DATA"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    *package_files, no_pytest = json.loads(result.stdout)
    assert all(Path(file).is_relative_to(image) for file in package_files), package_files
    assert no_pytest


def test_wheel_installed_as_the_dockerfile_does_runs_the_worker(
    stages: dict[str, list[Instruction]], tmp_path: Path
) -> None:
    """One test, so the replay (the slow part) runs once whatever the xdist distribution."""
    image = replay_builder(stages, tmp_path / "image")
    env = runtime_env(image, stages, tmp_path / "data")
    check_help(env)
    check_config(env)
    check_migrations(env)
    check_contents(image, env)
