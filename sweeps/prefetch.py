"""Fetch, on a machine with internet (a login node), every hub checkpoint and dataset a run's config loads, into the
Hugging Face cache (HF_HOME, default ~/.cache/huggingface), so compute nodes run with HF_HUB_OFFLINE=1:

    python sweeps/prefetch.py experiment=paper_qwen2vl_2b_pmcvqa            # Qwen2-VL-2B base + Instruct, BioMistral-7B, PMC-VQA
    python sweeps/prefetch.py experiment=paper_qwen2vl_2b_pmcvqa --dry-run  # only list them

The arguments are the run's Hydra overrides. Both of the family's checkpoints are fetched (sweeps switch model_init),
the judge's model where a judge scores with one (judge=hf: eval.judge_score scores every run, SFT and DPO too), and
the dataset and extra test sets given as hub ids. Local paths and the shipped tiny models need nothing."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def hub_id(value) -> bool:
    """'org/name' that is not a local path."""
    return isinstance(value, str) and value.count("/") == 1 and not value.startswith(("/", ".", "~")) \
        and not Path(value).expanduser().exists()


def wanted(cfg) -> list[tuple[str, str, str | None]]:
    """(repo id, repo type, revision) of every hub repository the config can load."""
    repos = []
    if not cfg.family.embedded:
        repos += [(cfg.family[slot], "model", None) for slot in ("base", "instruct") if cfg.family.get(slot)]
    if cfg.model_init.get("path") and hub_id(cfg.model_init.path):
        repos.append((cfg.model_init.path, "model", cfg.model_init.get("revision")))
    for judge in (cfg.get("judge"), cfg.eval.get("judge")):
        if judge is not None and hub_id(judge.get("model")) and str(judge.get("_target_", "")).endswith("HFJudge"):
            repos.append((judge.model, "model", judge.get("revision")))
    datasets = [cfg.dataset, *(cfg.eval.get("test_sets") or {}).values()]
    repos += [(d.path, "dataset", d.get("revision")) for d in datasets if hub_id(d.get("path"))]
    if hub_id(cfg.eval.get("similarity_model")):
        repos.append((cfg.eval.similarity_model, "model", None))
    return list(dict.fromkeys(repos))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="the run's Hydra overrides")
    parser.add_argument("--dry-run", action="store_true", help="list the repositories, fetch nothing")
    args = parser.parse_args(argv)
    from hydra import compose, initialize_config_dir

    import medvqa_rl  # noqa: F401  (its resolvers)

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=args.overrides)
    repos = wanted(cfg)
    if not args.dry_run and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        parser.exit(2, "prefetch needs the network: unset HF_HUB_OFFLINE on the login node\n")
    for repo, kind, revision in repos:
        if args.dry_run:
            print(f"{kind} {repo}" + (f"@{revision}" if revision else ""))
            continue
        from huggingface_hub import snapshot_download

        print(f"{kind} {repo} -> {snapshot_download(repo_id=repo, repo_type=kind, revision=revision)}", flush=True)


if __name__ == "__main__":
    main()
