"""The container image, checked without a container engine.

No container engine runs on the machines that test Kanary, so the image is
checked in the parts that can be checked: the Dockerfile passes hadolint, its
build stage's meson commands (read from the Dockerfile itself) build and
install both binaries from a clean copy of the tree, and the runtime stage's
packages provide every shared library those binaries need.
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
DOCKERFILE = TOP / "Dockerfile"


def stages():
    """The Dockerfile's instructions per stage, continuation lines joined."""
    text = DOCKERFILE.read_text()
    text = re.sub(r"\\\n\s*", " ", text)
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            result.append([])
        if result:
            result[-1].append((word.upper(), rest))
    return result


def apt_packages(stage):
    """Packages a stage installs with apt-get install."""
    pkgs = []
    for word, rest in stage:
        if word != "RUN" or "apt-get install" not in rest:
            continue
        after = rest.split("apt-get install", 1)[1].split("&&", 1)[0]
        pkgs += [p for p in after.split() if not p.startswith("-")]
    return pkgs


HADOLINT_VERSION = "2.15.1"


def find_hadolint():
    """HADOLINT, else the copy tests/run keeps in the cache, else PATH."""
    if os.environ.get("HADOLINT"):
        return os.environ["HADOLINT"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    cached = Path(cache) / "kanary" / f"hadolint-{HADOLINT_VERSION}" / "hadolint"
    return str(cached) if cached.is_file() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint():
    hadolint = find_hadolint()
    assert hadolint, "hadolint not found (tests/run installs it; or set HADOLINT)"
    out = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_test_images_dockerfiles_pass_hadolint():
    """The Dockerfiles of the images tests/image/build makes for the test node."""
    hadolint = find_hadolint()
    assert hadolint, "hadolint not found (tests/run installs it; or set HADOLINT)"
    for name in ("haproxy", "pause", "testapp"):
        path = TOP / "tests" / "image" / name / "Dockerfile"
        out = subprocess.run([hadolint, str(path)], capture_output=True, text=True)
        assert out.returncode == 0, f"{path}: " + out.stdout + out.stderr


def test_image_has_two_stages_and_runs_as_non_root():
    s = stages()
    assert len(s) == 2
    users = [rest for word, rest in s[1] if word == "USER"]
    assert users and not users[-1].startswith("0") and users[-1].split(":")[0].isdigit()


def test_build_stage_builds_and_installs_both_binaries():
    build_runs = [rest for word, rest in stages()[0] if word == "RUN" and "meson setup" in rest]
    assert len(build_runs) == 1, build_runs
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        files = subprocess.run(["git", "ls-files", "-z"], cwd=TOP, capture_output=True,
                               check=True).stdout.split(b"\0")
        for f in files:
            if not f:
                continue
            rel = f.decode()
            dst = src / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TOP / rel, dst, follow_symlinks=False)
        env = dict(os.environ, BUILD_DIR=f"{tmp}/build", OUT_DIR=f"{tmp}/out")
        run = subprocess.run(["sh", "-c", build_runs[0]], cwd=src, env=env,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
        runtime = apt_packages(stages()[1])
        for name in ("kanary-webhook", "kanary-controller"):
            binary = Path(tmp) / "out/usr/local/bin" / name
            assert binary.is_file(), f"{binary} not installed"
            version = subprocess.run([binary, "--version"], capture_output=True, text=True)
            assert version.returncode == 0 and name in version.stdout
            check_libraries(binary, runtime)


def check_libraries(binary, runtime_packages):
    """Every library the binary names must come from a runtime package or libc6."""
    dyn = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
    assert needed
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    for lib in needed:
        path = paths.get(lib)
        assert path, f"{binary.name}: {lib} not resolved"
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True,
                               text=True)
        if owner.returncode != 0:
            owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        pkg = owner.stdout.split(":", 1)[0]
        assert pkg in runtime_packages or pkg == "libc6", \
            f"{binary.name} needs {lib} from {pkg}, which the runtime stage does not install"
