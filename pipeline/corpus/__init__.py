"""What a built corpus is made into: mixtures of its sources (the paper's Table 1, or a TOML file)."""
