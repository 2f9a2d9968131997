"""Rebuilds the paper's tables and plots from run records (local run directories or the W&B API).

`python -m analysis --runs DIR [DIR...] --out OUT` or `python -m analysis --wandb ENTITY/PROJECT
[--group SWEEP] --out OUT`. Both sources give one DataFrame, a row per finished run (columns: run,
sweep, the factors, method, seed, metrics), and one history frame (run, step, mean_reward, completion
length, training accuracy) for the plots (named mean_reward, not reward: that is a factor), plus the runs
that did not finish, for the run list of the report (index.html; analysis/report.py).
"""
