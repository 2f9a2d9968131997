#!/usr/bin/env bash
# The paper's one-factor studies, one named Hydra sweep each (their grids: conf/sweep/<study>.yaml), then
# the tables. Every argument is a Hydra override applied to every study, for example:
#   bash sweeps/paper_studies.sh hydra/launcher=joblib hydra.launcher.n_jobs=2   # 2 runs at once
#   bash sweeps/paper_studies.sh debug=smoke                                      # every stage, minutes
#   bash sweeps/paper_studies.sh experiment=paper_qwen2vl_2b_pmcvqa hydra/launcher=slurm
# STUDIES="bias methods" picks studies (factorial: all 24 GRPO arms); RUNS and TABLES move the folders.
# Rerunning resumes: finished grid points are skipped, failed or interrupted ones run again.
set -euo pipefail
studies=(${STUDIES:-init semantic length bias methods})
runs=${RUNS:-multirun}
for study in "${studies[@]}"; do
    python -m medvqa_rl -m "sweep=$study" "sweep.root=$runs" "$@"
done
python -m analysis --runs "$runs" --out "${TABLES:-tables}"
