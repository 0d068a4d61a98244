"""Opening a finished run for export, generation and evaluation: its resolved config, the
checkpoint a command names, and the tokenizer its token shards were made with. Without torch,
so that a wrong run, checkpoint or tokenizer is refused at once (train/weights.py loads the
checkpoint's weights into a model).

A run folder holds `config.json` (the resolved config the trainer wrote) and checkpoints
(`checkpoints/step-NNNNNNNN/`, train/checkpoint.py); the config's `train.data` names the token
root whose `meta.json` files name the tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.common.errors import InputError, UserError
from pipeline.common.files import check_regular_file, file_sha256, refuse_special_files
from tokenizer.token_shards import META, read_meta
from train.checkpoint_paths import PREFIX, REPLACED, checkpoint_root, latest, list_checkpoints, step_name
from train.model_args import ModelArgs


@dataclass
class TrainedRun:
    run_dir: Path
    config: dict[str, Any]  # config.json: {"train": ..., "model": ..., ...}
    args: ModelArgs
    checkpoint: Path

    @property
    def data_root(self) -> Path:
        return Path(self.config["train"]["data"])

    @property
    def mixture(self) -> str:
        return self.config["train"]["mixture"]

    def token_meta(self) -> dict[str, Any] | None:
        """meta.json of the first source folder under the run's token root, if there is one."""
        root = self.data_root
        if not root.is_dir():
            return None
        for meta_path in sorted(root.glob(f"*/{META}")):
            try:
                return read_meta(meta_path.parent)
            except (OSError, InputError):  # unreadable: the next source's names the same tokenizer
                continue
        return None

    @property
    def tokenizer_sha256(self) -> str:
        """The sha256 of the tokenizer the run was trained with ("" for runs from before it was kept)."""
        return str(self.config.get("tokenizer_sha256") or "")

    def tokenizer_path(self, given: str | None = None) -> Path | None:
        """The SentencePiece model: `given`, else the one the token shards name, if it exists, else
        the run folder's own tokenizer.model; refused when it is not the tokenizer the run was trained with."""
        if given:
            path = Path(given)
            check_regular_file(path, "a tokenizer model")  # a FIFO would block the hash's open
            if not path.is_file():
                raise InputError(given, "tokenizer model not found")
            self.check_tokenizer(path)
            return path
        meta = self.token_meta()
        if meta and meta.get("tokenizer"):
            path = Path(meta["tokenizer"])
            if path.is_file():
                self.check_tokenizer(path)
                return path
        own = self.run_dir / "tokenizer.model"  # an imported run's (train/hf_import.py)
        if own.is_file():
            self.check_tokenizer(own)
            return own
        return None

    def check_tokenizer(self, path: Path) -> None:
        """A tokenizer file whose sha256 is not the run's ends with one line naming both."""
        if not self.tokenizer_sha256:
            return
        found = file_sha256(path)
        if found != self.tokenizer_sha256:
            raise UserError(f"{path}: tokenizer sha256 {found[:12]} is not the {self.tokenizer_sha256[:12]} "
                            f"{self.run_dir} was trained with (retrained since?); pass --tokenizer with the "
                            "run's own")

    def check_tokens(self, meta: dict[str, Any], where: Path) -> None:
        """Token shards (their meta.json) must come from the tokenizer the run was trained with."""
        found = str(meta.get("tokenizer_sha256") or "")
        if self.tokenizer_sha256 and found and found != self.tokenizer_sha256:
            raise UserError(f"{where}: token shards of tokenizer sha256 {found[:12]}, but {self.run_dir} was "
                            f"trained with {self.tokenizer_sha256[:12]}: its scores would be meaningless")

    def special_ids(self) -> tuple[int, int]:
        meta = self.token_meta() or {}
        return int(meta.get("bos_id", 1)), int(meta.get("eos_id", 2))


def open_run(run: str, step: str | None = None) -> TrainedRun:
    run_dir = Path(run)
    config_path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise InputError(run, "no such run folder")
    refuse_special_files(run_dir)  # a FIFO among its checkpoints would block their reader for ever
    if not config_path.is_file():
        raise InputError(str(config_path), "missing: not a run folder written by `train`")
    try:
        config = json.loads(config_path.read_text())
        args = model_args_from_json(config["model"])
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(str(config_path), f"unreadable run config ({e})") from None
    if step:
        if not (step.startswith(PREFIX) or step.isdigit()) or "/" in step:
            raise UserError(f"--checkpoint {step!r}: expected a step number or a {PREFIX}NNNNNNNN name")
        name = step if step.startswith(PREFIX) else step_name(int(step))
        # Found as `latest` finds it: a step whose re-save was killed midway is its copy set aside.
        found = [p for p in list_checkpoints(run_dir) if p.name.removeprefix(REPLACED) == name]
        if not found:
            raise InputError(str(checkpoint_root(run_dir) / name), "no such checkpoint")
        path = found[0]
    else:
        path = latest(run_dir)
        if path is None:
            raise InputError(str(run_dir), "holds no checkpoint yet (train it first)")
    return TrainedRun(run_dir, config, args, path)


def model_args_from_json(values: dict[str, Any]) -> ModelArgs:
    known = {f.name for f in fields(ModelArgs)}
    unknown = set(values) - known
    if unknown:
        raise KeyError(f"unknown model fields {sorted(unknown)}")
    return ModelArgs(**values)


def refuse_inside_checkpoints(out: Path, run: TrainedRun) -> None:
    """An output folder inside the run's checkpoints would go with the checkpoint when a later
    training step prunes it (train/checkpoint.py keeps the last few): it is refused."""
    root = checkpoint_root(run.run_dir).resolve()
    target = out.resolve()
    if target == root or root in target.parents:
        raise UserError(f"{out}: inside {checkpoint_root(run.run_dir)}, whose folders the run prunes as it trains; "
                        "export elsewhere (nothing was written)")


def refuse_existing(out: Path) -> None:
    """An output folder must be new: nothing a command did not write is overwritten."""
    if out.exists():
        raise UserError(f"{out}: already exists; export to a new folder (nothing was overwritten)")
