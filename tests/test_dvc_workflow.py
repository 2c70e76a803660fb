"""The DVC workflow as users run it, end to end on the bundled sample, in a temporary copy of the repo.

One module-scoped copy is reproduced once with tiny params and then exercised in order:
no-op reruns, which stages each param invalidates, real partial reruns, `dvc exp run -S`, push to a
local remote + fresh clone + pull, and resuming pretrain after it is killed. The tests share that
copy, so they run in file order and each leaves it committed and up to date for the next.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

STAGES = ("extract", "clean", "tokenizer", "pack", "pretrain", "sft", "eval", "report")
DOWNSTREAM = {name: set(STAGES[i:]) for i, name in enumerate(STAGES)}

# Small enough that the whole pipeline runs in well under a minute on 2 cores, big enough that
# every stage does real work on the bundled sample. Merged into the repo's params.yaml.
TINY: dict[str, Any] = {
    "tokenizer.vocab_size": 512,
    "model.block_size": 64,
    "model.n_layer": 1,
    "model.n_head": 2,
    "model.n_embd": 32,
    "train.max_steps": 12,
    "train.batch_tokens": 512,
    "train.micro_batch_size": 8,
    "train.warmup_steps": 2,
    "train.eval_interval": 6,
    "train.eval_batches": 1,
    "train.ckpt_interval": 6,
    "train.compile": False,
    "train.device": "cpu",
    "sft.epochs": 1,
    "sft.batch_size": 32,
    "sft.section_questions": 0,
    "sft.multi_turn_fraction": 0.0,
    "sft.answer_sentences": 1,
    "sft.eval_interval": 5,
    "sft.eval_conversations": 16,
    "sft.checkpoint_interval": 10,
    "sft.device": "cpu",
    "eval.max_val_tokens": 2048,
    "eval.cloze_items": 8,
    "eval.qa_questions": 4,
    "eval.qa_max_new_tokens": 8,
    "eval.sample_max_new_tokens": 8,
    "eval.device": "cpu",
}
RUNTIME = {"runtime.progress": False, "runtime.wandb": "disabled", "runtime.log_interval": 1, "runtime.threads": 2}

# One param per stage section, with a new value that changes that stage's output.
PARAM_CHANGES: dict[str, tuple[str, Any]] = {
    "extract": ("extract.drop_sections", ["references"]),
    "clean": ("clean.min_alpha_ratio", 0.7),
    "tokenizer": ("tokenizer.min_frequency", 3),
    "pack": ("pack.val_every", 100),
    "pretrain": ("model.n_layer", 2),
    "sft": ("sft.lr", 1e-4),
    "eval": ("eval.qa_questions", 3),
}

RUNNING = re.compile(r"Running stage '([^']+)'")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # dvc.yaml says `python stages/x.py`: make that this interpreter (the venv's), activated or not.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(WANDB_MODE="disabled", DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1")
    env.update(GIT_AUTHOR_NAME="wikigpt test", GIT_AUTHOR_EMAIL="test@wikigpt.invalid")
    env.update(GIT_COMMITTER_NAME="wikigpt test", GIT_COMMITTER_EMAIL="test@wikigpt.invalid")
    return env


def run(cwd: Path, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        list(args), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed with {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def dvc(cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(cwd, sys.executable, "-m", "dvc", *args, **kw)


def git(cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(cwd, "git", *args, **kw)


def ran(proc: subprocess.CompletedProcess) -> set[str]:
    """The stages DVC actually ran, from its `Running stage 'x':` lines."""
    return set(RUNNING.findall(proc.stdout + proc.stderr))


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def set_params(repo: Path, changes: dict[str, Any]) -> None:
    """Set dotted params (`{"train.lr": 6e-4}`) in repo/params.yaml."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = params
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def copy_worktree(dst: Path) -> None:
    """Copy the repo's tracked and not-ignored files (no .git, no DVC cache, no outputs)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=False,
    )
    if listing.returncode != 0:
        pytest.skip(f"{REPO_ROOT} is not a git checkout")
    for rel in filter(None, listing.stdout.decode().split("\0")):
        src = REPO_ROOT / rel
        if not src.is_file():  # deleted in the worktree but still tracked
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)


def status(repo: Path) -> dict[str, Any]:
    """`dvc status --json`: stage name -> what changed ({} when everything is up to date)."""
    return json.loads(dvc(repo, "status", "--json").stdout or "{}")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A committed copy of the repo with tiny params, reproduced once (every stage ran)."""
    root = tmp_path_factory.mktemp("dvcflow") / "wikigpt"
    root.mkdir()
    copy_worktree(root)
    set_params(root, {**TINY, **RUNTIME})
    git(root, "init", "-q")
    commit_all(root, "tiny params")
    first = dvc(root, "repro", timeout=600)
    commit_all(root, "reproduced")
    root.joinpath(".first_repro.log").write_text(first.stdout)
    return root


def test_repro_runs_every_stage_then_nothing(repo):
    first = repo.joinpath(".first_repro.log").read_text()
    assert set(RUNNING.findall(first)) == set(STAGES)
    again = dvc(repo, "repro")
    assert ran(again) == set()
    assert status(repo) == {}
    assert "Data and pipelines are up to date." in dvc(repo, "status").stdout
    # the report of that run carries the run's own numbers
    report = (repo / "reports" / "report.md").read_text()
    train = read_json(repo / "metrics" / "train.json")
    assert f"| parameters | {train['params']:,} |" in report
    assert (repo / "reports" / "figures" / "pretrain_loss.png").stat().st_size > 1000


def test_dag_downstream_of_each_stage_is_the_rest_of_the_chain(repo):
    """What a changed output reruns: DVC reruns every stage downstream of it (by its dependencies)."""
    dot = dvc(repo, "dag", "--dot").stdout
    edges = {tuple(e) for e in re.findall(r'"([\w]+)" -> "([\w]+)"', dot)}
    children: dict[str, set[str]] = {s: set() for s in STAGES}
    for a, b in edges:
        children[a].add(b)

    def reach(stage: str) -> set[str]:
        out = {stage}
        for child in children[stage]:
            out |= reach(child)
        return out

    for stage in STAGES:
        assert reach(stage) == DOWNSTREAM[stage], stage


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "report"])
def test_a_param_of_each_stage_invalidates_that_stage_only(repo, stage):
    """Changing one param of a stage's section makes exactly that stage (and the report, which
    prints every section) out of date; nothing upstream or beside it."""
    key, value = PARAM_CHANGES[stage]
    try:
        set_params(repo, {key: value})
        changed = status(repo)
        assert set(changed) == {stage, "report"}, changed
        assert key.split(".")[0] in json.dumps(changed[stage])
    finally:
        git(repo, "checkout", "--", "params.yaml")  # back to the committed, up-to-date state


def test_eval_param_reruns_eval_and_report_only(repo):
    set_params(repo, {"eval.cloze_items": 6})
    out = dvc(repo, "repro")
    assert ran(out) == DOWNSTREAM["eval"]
    assert read_json(repo / "metrics" / "eval.json")["base"]["cloze_n"] <= 6
    commit_all(repo, "eval.cloze_items=6")


def test_clean_param_reruns_clean_and_everything_downstream(repo):
    before = read_json(repo / "metrics" / "clean.json")["documents_out"]
    set_params(repo, {"clean.min_chars": 600})
    out = dvc(repo, "repro", timeout=600)
    assert ran(out) == DOWNSTREAM["clean"]  # extract stays cached
    assert read_json(repo / "metrics" / "clean.json")["documents_out"] < before
    assert ran(dvc(repo, "repro")) == set()
    assert status(repo) == {}
    commit_all(repo, "clean.min_chars=600")


def test_push_then_fresh_clone_pull_is_up_to_date(repo, tmp_path):
    remote = tmp_path / "remote"
    dvc(repo, "remote", "add", "-d", "local", str(remote))
    commit_all(repo, "local remote")
    dvc(repo, "push")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert not (clone / "data" / "models" / "base").exists()
    dvc(clone, "pull")
    assert (clone / "data" / "models" / "base" / "model.safetensors").exists()
    assert status(clone) == {}
    assert ran(dvc(clone, "repro")) == set()


def test_exp_run_sets_train_lr_and_exp_show_lists_every_stage(repo):
    out = dvc(repo, "exp", "run", "-S", "train.lr=6e-4", timeout=600)
    assert ran(out) == DOWNSTREAM["pretrain"]
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    rows = [shown_row for commit in shown for shown_row in [commit, *_exp_rows(commit)]]
    exp = [r for r in rows if _params(r).get("train", {}).get("lr") == 6e-4]
    assert exp, "the experiment with train.lr=6e-4 is not in `dvc exp show`"
    params, metrics = _params(exp[0]), _metrics(exp[0])
    assert {"extract", "clean", "tokenizer", "pack", "model", "train", "sft", "eval"} <= set(params)
    for name in ("extract", "clean", "tokenizer", "pack", "train", "sft", "eval"):
        assert metrics.get(f"metrics/{name}.json"), f"metrics/{name}.json missing from dvc exp show"
    assert metrics["metrics/train.json"]["steps"] == TINY["train.max_steps"]


def _exp_rows(commit: dict) -> list[dict]:
    return [rev for exp in commit.get("experiments") or [] for rev in exp.get("revs", [])]


def _params(row: dict) -> dict:
    return ((row.get("data") or {}).get("params") or {}).get("params.yaml", {}).get("data", {})


def _metrics(row: dict) -> dict:
    return {path: v.get("data", {}) for path, v in ((row.get("data") or {}).get("metrics") or {}).items()}


def test_killed_pretrain_resumes_from_last_checkpoint(repo):
    steps, interval = 30, 5
    set_params(repo, {"train.max_steps": steps, "train.ckpt_interval": interval})
    state = repo / "data" / "checkpoints" / "pretrain" / "state.pt"
    start = time.time()
    log = repo / ".killed_repro.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro", "pretrain"], cwd=repo, env=_env(),
            stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            # the persisted state of the previous run is older than `start`: wait for a new one
            while not (state.exists() and state.stat().st_mtime > start):
                assert proc.poll() is None, f"pretrain ended before its first checkpoint:\n{log.read_text()[-3000:]}"
                assert time.time() - start < 240, "no checkpoint within 240 s"
                time.sleep(0.02)
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode != 0, "the interrupted repro should fail"
    assert f"step {steps}/{steps}" not in log.read_text()
    out = dvc(repo, "repro", "pretrain", timeout=300)
    assert ran(out) == {"pretrain"}
    resumed = re.search(r"resuming at step (\d+)", out.stdout + out.stderr)
    assert resumed, out.stdout[-3000:]
    step = int(resumed.group(1))
    assert 0 < step < steps and step % interval == 0
    train = read_json(repo / "metrics" / "train.json")
    assert train["resumed_from_step"] == step and train["steps"] == steps
