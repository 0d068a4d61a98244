"""The install script builds KenLM's lmplz (the kenlm module scores with what it builds), installs
exactly the lock, and refuses a lock that does not match pyproject.toml."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import kenlm

from tests.conftest import BIN, REPO


def test_lmplz_trains_a_trigram_model_that_kenlm_scores(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the cat sat on the mat", "the dog sat on the log", "a cat saw a dog"] * 20) + "\n")
    arpa = tmp_path / "model.arpa"
    with open(corpus, "rb") as src, open(arpa, "wb") as dst:
        subprocess.run([str(BIN / "lmplz"), "-o", "3", "--discount_fallback", "-S", "64M"], stdin=src, stdout=dst,
                       stderr=subprocess.DEVNULL, check=True)
    binary = tmp_path / "model.bin"
    subprocess.run([str(BIN / "build_binary"), str(arpa), str(binary)], check=True, capture_output=True)
    model = kenlm.Model(str(binary))
    assert model.order == 3
    seen = model.score("the cat sat on the mat", bos=True, eos=True)
    unseen = model.score("mat the on sat cat the", bos=True, eos=True)
    assert seen > unseen
    assert -10 < seen < 0


def _locked_versions(lock: Path) -> dict[str, str]:
    """name -> version of every pin in the lock, read with a plain regex."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", lock.read_text(), flags=re.M)
    return {_normal(name): version for name, version in pins}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _hashed_pins(lock: Path) -> int:
    """Pins followed by at least one sha256 hash: pip's --require-hashes refuses a file with fewer."""
    return len(re.findall(r"^[A-Za-z0-9][^\n]*==[^\n]*\\\n\s+--hash=sha256:[0-9a-f]{64}", lock.read_text(), flags=re.M))


def test_every_installed_package_is_the_locked_version_with_hashes() -> None:
    lock = REPO / "requirements.lock"
    pins = _locked_versions(lock)
    assert _hashed_pins(lock) == len(pins)
    # `./install.sh --bench` adds the benchmarks' peers from their own lock, and stamps the venv.
    if (BIN.parent / ".herd-bench-lock.sha256").exists():
        pins = _locked_versions(REPO / "requirements-bench.lock")
    # The environment's own site-packages: not what a library vendors and puts on sys.path at
    # import (Ray adds its thirdparty_files, with a colorama of its own, once a test imports it).
    site_packages = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    installed = {_normal(d.metadata["Name"]): d.version
                 for d in importlib.metadata.distributions(path=sorted(site_packages))}
    installed.pop("herd")
    assert {name: installed.get(name) for name in pins} == pins  # nothing locked is missing or another version
    assert set(installed) <= set(pins) | {"pip"}  # and nothing is installed that the lock does not name
    assert pins["torch"] == "2.13.0+cpu"


def test_the_bench_lock_keeps_every_pin_of_the_main_lock() -> None:
    """The benchmarks' peers are locked within the main lock, so installing them (`./install.sh
    --bench`) moves no package herd runs with; datatrove is the version bench/ imports."""
    main, bench = _locked_versions(REPO / "requirements.lock"), _locked_versions(REPO / "requirements-bench.lock")
    assert {name: bench.get(name) for name in main} == main
    assert _hashed_pins(REPO / "requirements-bench.lock") == len(bench)
    assert bench["datatrove"] == "0.10.0"
    assert {"spacy", "trafilatura", "warcio", "fasteners"} <= set(bench) - set(main)


def test_install_refuses_a_lock_that_does_not_match_pyproject(tmp_path: Path) -> None:
    copy = tmp_path / "herd"
    copy.mkdir()
    for name in ("install.sh", "requirements.lock", "requirements-bench.lock", "pyproject.toml"):
        shutil.copy2(REPO / name, copy / name)
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('    "numpy",\n', '    "numpy",\n    "rich",\n', 1))
    done = subprocess.run(["bash", str(copy / "install.sh")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "install: requirements.lock does not match the dependencies in pyproject.toml: "
        "regenerate it with ./install.sh --lock"]
    assert not (copy / ".venv").exists()  # refused before installing anything
    # A change outside the dependencies (a pytest marker) keeps the lock valid.
    pyproject.write_text((REPO / "pyproject.toml").read_text().replace("timeout = 600", "timeout = 601"))
    check = subprocess.run(["bash", str(copy / "install.sh"), "--check-lock"], capture_output=True, text=True,
                           timeout=60)
    assert (check.returncode, check.stderr) == (0, "")
    # A bench extra edited alone leaves herd's own lock valid; the bench lock is refused, by
    # --check-lock and by --bench before it installs anything.
    pyproject.write_text((REPO / "pyproject.toml").read_text().replace('"fasteners", ', '"fasteners", "rich", ', 1))
    for flag in ("--check-lock", "--bench"):
        refused = subprocess.run(["bash", str(copy / "install.sh"), flag], capture_output=True, text=True, timeout=60)
        assert (refused.returncode, refused.stderr.strip().splitlines()) == (2, [
            "install: requirements-bench.lock does not match the dependencies in pyproject.toml: "
            "regenerate it with ./install.sh --lock"]), flag
    assert not (copy / ".venv").exists()
