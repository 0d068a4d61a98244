"""One module per source: its recipe (config, columns, `read()`, stages in order) in
`sources/<name>.py` and its sample writer in `sources/samples/<name>.py`.

Each is registered as an entry point of herd's pyproject.toml (groups `herd.sources` and
`herd.samples`) and found through pipeline/engine/registry.py, which imports a source only when
it is used: pipeline/ itself never imports this package.
"""
