"""Reuse decisions of a run (a floor above config checks and tracking): skip a finished run, resume a checkpoint,
copy a study's shared arm from another sweep (resumable.py, shared_arms.py)."""
