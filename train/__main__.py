"""`python -m train ...`: the `train` command (torchrun runs it as `-m train` or `--no-python train`)."""

from train.cli import main

main()
