"""Folders laid out like the Deep Learning AMIs' Pythons, for setup_host.sh to find under
PACERID_IMAGE_ROOT. Shaped from AWS's DLAMI release notes (/work/shared/reference/dlami.md:
`python_location /opt/pytorch/bin/python`, a virtual environment on the OSS images; a conda env
at /opt/conda/envs/pytorch, a plain prefix, on older ones; Base images without PyTorch).

Torch is never copied: each image env reaches the test venv's packages through its own
site-packages (a .pth), as the image's env would hold them itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

TEST_SITE = sysconfig.get_paths()["purelib"]
"""The site-packages of the venv running the tests: torch, torchvision and the requirements."""
BASE = Path(sys._base_executable).resolve()  # type: ignore[attr-defined]
"""The interpreter the test venv was made from (no torch of its own)."""
VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"


def venv_image(root: Path) -> Path:
    """<root>/opt/pytorch: a venv of the base interpreter whose packages hold torch."""
    prefix = root / "opt" / "pytorch"
    subprocess.run([str(BASE), "-m", "venv", "--without-pip", str(prefix)], check=True)
    (prefix / "lib" / VERSION / "site-packages" / "image_torch.pth").write_text(TEST_SITE + "\n")
    return prefix / "bin" / "python3"


def conda_image(root: Path) -> Path:
    """<root>/opt/conda/envs/pytorch: a plain (non-venv) prefix of the base interpreter, its
    standard library linked in, torch reachable through the prefix's own site-packages."""
    prefix = root / "opt" / "conda" / "envs" / "pytorch"
    (prefix / "bin").mkdir(parents=True)
    # A copy, not a link: Python finds its prefix next to the executable's real location.
    shutil.copy2(BASE, prefix / "bin" / VERSION)
    os.symlink(VERSION, prefix / "bin" / "python3")
    lib = Path(sys.base_prefix) / "lib"
    stdlib = prefix / "lib" / VERSION
    stdlib.mkdir(parents=True)
    for shared in lib.glob("libpython*"):  # where an $ORIGIN/../lib rpath looks for it
        os.symlink(shared, prefix / "lib" / shared.name)
    for entry in (lib / VERSION).iterdir():
        if entry.name != "site-packages":
            os.symlink(entry, stdlib / entry.name)
    (stdlib / "site-packages").mkdir()
    (stdlib / "site-packages" / "image_torch.pth").write_text(TEST_SITE + "\n")
    return prefix / "bin" / "python3"


def base_image(root: Path) -> Path:
    """A Base image: /usr/bin/python3 with no PyTorch."""
    (root / "usr" / "bin").mkdir(parents=True)
    os.symlink(BASE, root / "usr" / "bin" / "python3")
    return root / "usr" / "bin" / "python3"


def tiny_wheel(folder: Path) -> str:
    """A one-module wheel in `folder` (PEP 427 layout), for a requirement no image env holds;
    pip finds it there with PIP_FIND_LINKS and no index. Returns its project name."""
    files = {
        "tinypkg.py": "VALUE = 1\n",
        "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{name},sha256={encoded},{len(text)}")
    files["tinypkg-1.0.dist-info/RECORD"] = "\n".join([*record, "tinypkg-1.0.dist-info/RECORD,,"])
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "tinypkg-1.0-py3-none-any.whl", "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return "tinypkg"
