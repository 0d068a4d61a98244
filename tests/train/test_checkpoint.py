"""Checkpoint directories: DCP shards, atomic, checksummed, pruned to the last K; state.pt loaded with weights_only."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.common.errors import InputError
from pipeline.common.files import file_sha256
from tests.conftest import subprocess_env
from train import checkpoint
from train.parallel import join


class NotATensor:
    """An arbitrary class: a weights_only load must refuse to construct it."""


def model_and_optimizer(fill: float) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        model.weight.fill_(fill)
    return model, torch.optim.AdamW(model.parameters(), lr=0.1)


def save_step(run: Path, step: int) -> Path:
    model, optimizer = model_and_optimizer(float(step))
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return checkpoint.save(join("fsdp", "cpu"), run, checkpoint.step_name(step), model, optimizer,
                           {"step": step, "rng": checkpoint.rng_state()})


def test_save_then_load_round_trips_with_manifest(tmp_path: Path) -> None:
    path = save_step(tmp_path, 7)
    assert path == tmp_path / "checkpoints" / "step-00000007"
    assert sorted(p.name for p in path.iterdir()) == [".metadata", "__0_0.distcp", "manifest.json", "state.pt"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["step"] == 7 and set(manifest["files"]) == {".metadata", "__0_0.distcp", "state.pt"}
    assert manifest["files"]["state.pt"]["sha256"] == file_sha256(path / "state.pt")
    assert checkpoint.read_state(path)["step"] == 7
    # Whole tensors one at a time, as export reads them; Adam moved every weight by lr = 0.1.
    opened = checkpoint.open_checkpoint(path)
    assert opened.model_shapes() == {"weight": (2, 3)}
    assert torch.allclose(checkpoint.load_model_state(path)["weight"], torch.full((2, 3), 7.0 * (1 - 0.1 * 0.01) - 0.1))
    # Into a fresh model and optimizer: the weights and Adam's moments (and lr, a pickled value) come back.
    model, optimizer = model_and_optimizer(0.0)
    optimizer.param_groups[0]["lr"] = 0.5
    opened.load_into(join("fsdp", "cpu"), model, optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.1
    assert torch.equal(model.weight, checkpoint.load_model_state(path)["weight"])
    assert int(optimizer.state[model.weight]["step"]) == 1
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_a_weights_only_checkpoint_loads_the_weights_and_leaves_the_optimizer_fresh(tmp_path: Path) -> None:
    """What `train import` writes: the model's tensors, no optimizer state (a resume starts it fresh)."""
    model, _ = model_and_optimizer(3.0)
    path = checkpoint.save(join("fsdp", "cpu"), tmp_path, checkpoint.step_name(0), model, None, {"step": 0})
    opened = checkpoint.open_checkpoint(path)
    assert opened.weights_only and not checkpoint.open_checkpoint(save_step(tmp_path / "other", 1)).weights_only
    assert sorted(opened.index.state_dict_metadata) == ["model.weight"]
    fresh, optimizer = model_and_optimizer(0.0)
    optimizer.param_groups[0]["lr"] = 0.5
    opened.load_into(join("fsdp", "cpu"), fresh, optimizer)
    assert torch.equal(fresh.weight, torch.full((2, 3), 3.0))
    assert optimizer.param_groups[0]["lr"] == 0.5 and not optimizer.state  # as built: no moments, this lr


def test_keeps_only_the_last_k_and_ignores_unfinished_directories(tmp_path: Path) -> None:
    for step in (5, 10, 15, 20):
        save_step(tmp_path, step)
    (tmp_path / "checkpoints" / ".tmp-step-00000025").mkdir()  # a save that crashed midway
    (tmp_path / "checkpoints" / "diverged-step-00000003").mkdir()  # diagnosis state, never resumed
    assert checkpoint.latest(tmp_path).name == "step-00000020"
    checkpoint.prune(tmp_path, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "diverged-step-00000003", "step-00000015", "step-00000020"]


def test_corrupt_file_is_detected_by_its_checksum(tmp_path: Path) -> None:
    path = save_step(tmp_path, 1)
    data = bytearray((path / "__0_0.distcp").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "__0_0.distcp").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"__0_0.distcp: corrupt checkpoint file: sha256 does not match"):
        checkpoint.read_state(path)


def test_truncated_file_is_detected(tmp_path: Path) -> None:
    path = save_step(tmp_path, 1)
    with open(path / ".metadata", "r+b") as f:
        f.truncate(10)
    with pytest.raises(InputError, match=r".metadata: truncated or corrupt checkpoint file: 10 bytes"):
        checkpoint.read_state(path)
    (path / "manifest.json").unlink()
    with pytest.raises(InputError, match="manifest.json: missing"):
        checkpoint.read_state(path)


def test_loads_refuse_arbitrary_pickles(tmp_path: Path) -> None:
    path = save_step(tmp_path, 1)
    torch.save({"x": NotATensor()}, path / "state.pt")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["state.pt"] = {"sha256": file_sha256(path / "state.pt"), "bytes": (path / "state.pt").stat().st_size}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError) as refused:
        checkpoint.read_state(path)
    assert str(refused.value) == (f"{path / 'state.pt'}: not loaded: it refers to {__name__}.NotATensor, which the "
                                  "weights-only unpickler refuses")


def test_rng_states_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    path = save_step(tmp_path, 1)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(99)
    random.seed(99)
    np.random.seed(99)
    checkpoint.set_rng_state(checkpoint.read_state(path)["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]


def rewrite_manifest(path: Path, files: dict) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"] = files
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_a_manifest_naming_files_elsewhere_or_leaving_a_shard_unchecked_is_refused(tmp_path: Path) -> None:
    path = save_step(tmp_path, 1)
    files = json.loads((path / "manifest.json").read_text())["files"]
    (tmp_path / "outside").write_bytes(b"x")
    rewrite_manifest(path, {**files, "../../../outside": {"sha256": file_sha256(tmp_path / "outside"), "bytes": 1}})
    with pytest.raises(InputError) as refused:
        checkpoint.open_checkpoint(path)
    assert str(refused.value) == f"{path / 'manifest.json'}: corrupt checkpoint manifest"
    # The shard left out of the manifest: DCP's index still names it, and no checksum would cover it.
    rewrite_manifest(path, {name: entry for name, entry in files.items() if name != "__0_0.distcp"})
    with pytest.raises(InputError) as refused:
        checkpoint.open_checkpoint(path)
    assert str(refused.value) == (f"{path / '.metadata'}: not loaded: it names '__0_0.distcp', which manifest.json "
                                  "does not list")


# Saves step 3 twice (weights 1.0, then 2.0) in a process that SIGKILLs itself when the second save
# reaches the file operation named by argv[2] (a real kill, at that exact point, via an audit hook).
KILLED_RESAVE = """
import os, signal, sys
from pathlib import Path
import torch
from train import checkpoint
from train.parallel import join

run, kill_at = Path(sys.argv[1]), sys.argv[2]
model = torch.nn.Linear(3, 2, bias=False)

def save(fill):
    with torch.no_grad():
        model.weight.fill_(fill)
    checkpoint.save(join("fsdp", "cpu"), run, "step-00000003", model, None, {"step": 3})

def hook(event, args):
    src = str(args[0])
    if (kill_at == "rename-in" and event == "os.rename" and Path(src).name.startswith(".tmp-")) or (
            kill_at == "delete-old" and event == "shutil.rmtree" and Path(src).name.startswith(".replaced-")):
        os.kill(os.getpid(), signal.SIGKILL)

save(1.0)
sys.addaudithook(hook)
save(2.0)
"""


def weight_of(path: Path) -> float:
    return float(checkpoint.load_model_state(path)["weight"].unique().item())


@pytest.mark.parametrize(("kill_at", "survivor"), [("rename-in", 1.0), ("delete-old", 2.0)])
def test_a_resave_of_one_step_killed_midway_keeps_the_step_whole(tmp_path: Path, kill_at: str,
                                                                  survivor: float) -> None:
    """Old copy aside, new one in, old one deleted: killed between any two, the step is still there."""
    killed = subprocess.run([sys.executable, "-c", KILLED_RESAVE, str(tmp_path), kill_at], env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    found = checkpoint.latest(tmp_path)
    assert found is not None and checkpoint.read_state(found)["step"] == 3
    assert weight_of(found) == survivor
    # The next save of that step, or a prune, leaves the one step-00000003 and no copy aside.
    if kill_at == "rename-in":
        model, _ = model_and_optimizer(4.0)
        checkpoint.save(join("fsdp", "cpu"), tmp_path, "step-00000003", model, None, {"step": 3})
    checkpoint.prune(tmp_path, keep=3)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000003"]
    assert weight_of(tmp_path / "checkpoints" / "step-00000003") == (4.0 if kill_at == "rename-in" else 2.0)
