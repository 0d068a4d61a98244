import os

# As `train` does (train/cli.py): spinning OpenMP waits collapse on a loaded shared machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
