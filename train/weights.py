"""A finished run's checkpoint loaded into a `Transformer`, its shapes checked first."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.common.errors import UserError
from train import checkpoint
from train.model import Transformer
from train.trained import TrainedRun


def load_model(run: TrainedRun, device: str | torch.device = "cpu") -> Transformer:
    """The checkpoint's weights in a Transformer of the run's shape, in eval mode, fp32."""
    try:
        device = torch.device(device)
    except RuntimeError:
        raise UserError(f"--device {device!r}: not a device (cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device available")
    model = Transformer(run.args)  # built on the CPU: its rotary tables are real already
    opened = checkpoint.open_checkpoint(run.checkpoint)  # every checksum, before anything is unpickled
    check_shapes(opened.model_shapes(), model, run.checkpoint)
    model.load_state_dict(dict(opened.model_tensors()))
    return model.to(device).eval()


def check_shapes(state: dict[str, tuple[int, ...]], model: torch.nn.Module, where: Path) -> None:
    """A checkpoint (name -> shape) of another model shape is one clear line, not a load_state_dict traceback."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise UserError(f"{where}: checkpoint does not fit the run's model "
                        f"({len(missing)} tensors missing, e.g. {missing[:1]}; {len(extra)} unexpected, "
                        f"e.g. {extra[:1]})")
    for name, tensor in expected.items():
        if tuple(state[name]) != tuple(tensor.shape):
            raise UserError(f"{where}: {name} has shape {tuple(state[name])} but the run's model "
                            f"needs {tuple(tensor.shape)}: a checkpoint of a different model shape")
