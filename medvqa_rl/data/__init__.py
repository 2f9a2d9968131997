"""Dataset builders for medvqa_rl (synthetic generator and real-data loaders)."""
