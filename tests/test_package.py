"""The wheel, installed in a clean virtualenv outside the checkout, works as the checkout does:
the `rallycall` command, every module importable, templates and example definitions found.

Nothing is downloaded: the wheel is built with the project venv's setuptools and installed
without its dependencies, which the temporary venv sees through a `.pth` file naming the project
venv's site-packages (a plain path: the editable install's finder there is never run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_SHIPPED = {"tests", "bench", "deploy", "docs", "build", "dist"}
"""Top-level folders of the checkout that are not part of the product."""
CHECKOUT_ONLY = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", *NOT_SHIPPED)


@dataclass(frozen=True)
class Installed:
    source: Path
    """The snapshot of the checkout the wheel was built from."""
    wheel: Path
    venv: Path
    elsewhere: Path
    """An empty folder outside the checkout to run commands from."""

    def run(self, *argv: str) -> str:
        """Run a command of the venv from `elsewhere`, with no rallycall or Temporal settings."""
        variables = {k: v for k, v in os.environ.items() if not k.startswith(("RALLYCALL_", "TEMPORAL_"))}
        done = subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            cwd=self.elsewhere, env=variables, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("package")
    source, wheels, env, elsewhere = work / "source", work / "wheels", work / "venv", work / "elsewhere"
    shutil.copytree(ROOT, source, ignore=CHECKOUT_ONLY)  # builds leave build/ and *.egg-info behind
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    offline = ["--no-index", "--no-deps"]
    subprocess.run([*pip, "wheel", *offline, "--no-build-isolation", "-w", wheels, source], check=True)
    (wheel,) = wheels.glob("rallycall-*.whl")
    venv.EnvBuilder(with_pip=False).create(env)
    subprocess.run([*pip, "--python", env / "bin" / "python", "install", *offline, wheel], check=True)
    # Only now, so that pip above saw a clean venv and no rallycall already installed:
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    (site_packages / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    elsewhere.mkdir()
    return Installed(source, wheel, env, elsewhere)


def test_the_wheel_holds_every_module_and_data_file_of_the_checkout(installed: Installed) -> None:
    source = installed.source
    folders = [f.name for f in source.iterdir() if f.is_dir()]
    shipped_folders = set(folders) - CHECKOUT_ONLY(str(source), folders)  # the build left build/ there
    expected = {p.name for p in source.glob("*.py")} | {
        path.relative_to(source).as_posix()
        for folder in shipped_folders
        for path in (source / folder).rglob("*")
        if path.is_file()
    }
    shipped = set(zipfile.ZipFile(installed.wheel).namelist())
    assert expected - shipped == set(), "in the checkout but not in the wheel"
    data = {"templates/email.html", "examples/schemes.yaml", "examples/procedures/conference-call.yaml"}
    assert data <= shipped


def test_rallycall_command_runs_the_cli_and_the_services(installed: Installed) -> None:
    usage = installed.run("rallycall", "--help")
    for command in ("conference", "procedure", "status", "rejoin", "end", "list"):
        assert command in usage
    for service in ("worker", "callbacks", "console", "stack", "simulator", "mailbox"):
        assert service in usage
    assert "serve" in installed.run("rallycall", "simulator", "--help")
    assert "RALLYCALL" in installed.run("rallycall", "worker", "--help")

    procedures = installed.run("rallycall", "procedure", "list")
    assert "conference-call" in procedures and "crisis-with-deputies" in procedures, procedures


def test_everything_imports_from_the_venv_and_finds_its_data(installed: Installed) -> None:
    modules = sorted(
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in zipfile.ZipFile(installed.wheel).namelist()
        if name.endswith(".py") and not name.endswith("__main__.py")
    )
    probe = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]: importlib.import_module(name)\n"
        "import config, workflows, domain.messages as m\n"
        "print(workflows.__file__, config.EXAMPLES, m.TEMPLATES_DIR, sep='\\n')\n"
        "print(m.email_html('Gas leak', 'Dial in now'))\n"
    )
    workflows_file, examples, templates, html = installed.run("python", "-c", probe, *modules).split("\n", 3)
    for path in (workflows_file, examples, templates):
        assert Path(path).is_relative_to(installed.venv), f"{path} resolved outside the installed wheel"
    assert "Dial in now" in html
