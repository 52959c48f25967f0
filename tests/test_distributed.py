"""Data-parallel training: the collectives against a world of one, and `torchrun` end to end."""

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import dans
from dans import distributed
from dans.builders import build_model, load_graph
from dans.optim import guarded_step
from dans.pipeline import build_trainer
from dans.rundir import RunDirectory

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_process_not_started_by_torchrun_is_a_world_of_one():
    assert distributed.world() == distributed.World(0, 1)
    assert distributed.shard(7) == slice(0, 7)
    assert distributed.gather_objects("x") == ["x"]
    assert distributed.all_true(False, torch.device("cpu")) is False
    assert distributed.largest(2.5, torch.device("cpu")) == 2.5


# ------------------------------------------------------------ two gloo processes, in-process


def _in_group(rank, size, folder, job):
    torch.set_num_threads(1)  # as torchrun gives each process
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=size
    )
    try:
        torch.save(job(rank), f"{folder}/rank{rank}.pt")
    finally:
        distributed.stop()


def _run_group(tmp_path, job, size=2):
    mp.spawn(_in_group, args=(size, str(tmp_path), job), nprocs=size)
    return [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in range(size)]


def _shards(rank):
    return [distributed.shard(n) for n in (0, 1, 5, 6)]


def _largest(rank):
    return distributed.largest([3.5, 1.25][rank], torch.device("cpu"))


def test_every_process_gets_the_largest_value(tmp_path):
    # What a run with a time budget decides by: the slowest process's clock.
    assert _run_group(tmp_path, _largest) == [3.5, 3.5]


def test_shards_cover_every_item_once_in_order(tmp_path):
    first, second = _run_group(tmp_path, _shards)
    for count, a, b in zip((0, 1, 5, 6), first, second, strict=True):
        items = list(range(count))
        assert items[a] + items[b] == items
        assert abs(len(items[a]) - len(items[b])) <= 1


def _averaged(rank):
    """Rank 0 has gradients 1 and none; rank 1 has 3 and none; a third parameter has a
    gradient on rank 1 only. Then a step with a NaN loss on rank 1 only."""
    used = torch.nn.Parameter(torch.zeros(2))
    unused = torch.nn.Parameter(torch.zeros(1))
    partly = torch.nn.Parameter(torch.zeros(1))
    used.grad = torch.full((2,), 1.0 + 2 * rank)
    if rank == 1:
        partly.grad = torch.full((1,), 4.0)
    distributed.average_gradients([used, unused, partly])
    averaged = (used.grad.clone(), unused.grad, partly.grad.clone())
    optimizer = torch.optim.SGD([used], lr=1.0)
    loss = used.sum() + (float("nan") if rank == 1 else 0.0)
    taken = guarded_step(optimizer, loss)
    return *averaged, taken, used.detach().clone()


def test_gradients_are_averaged_and_a_nan_anywhere_skips_everywhere(tmp_path):
    for rank_result in _run_group(tmp_path, _averaged):
        used, unused, partly, taken, weights = rank_result
        assert torch.equal(used, torch.full((2,), 2.0))
        assert unused is None
        assert torch.equal(partly, torch.full((1,), 2.0))
        assert taken is False
        assert torch.equal(weights, torch.zeros(2))


def _stopping(rank):
    """Rank 1 leaves the final barrier a second late; returns how long ``stop`` took."""
    if rank == 1:
        barrier = dist.barrier
        dist.barrier = lambda: (barrier(), time.sleep(1.0))
    start = time.monotonic()
    distributed.stop()
    return time.monotonic() - start


def test_no_process_leaves_the_group_before_every_one_has_left_the_final_barrier(tmp_path):
    waited, _ = _run_group(tmp_path, _stopping)
    # Rank 0 waited in stop() for rank 1 to leave the barrier.
    assert waited >= 0.9, waited


def _evaluated(rank):
    torch.manual_seed(0)
    kg = dans.load_dataset("umls")
    config = dans.TrainConfig(encoder="lookup", dim=16, device="cpu")
    return dans.evaluate(build_model(config, kg), kg, "valid").to_dict()


def test_sharded_evaluation_gives_every_process_the_metrics_of_one(tmp_path, umls):
    torch.manual_seed(0)
    config = dans.TrainConfig(encoder="lookup", dim=16, device="cpu")
    alone = dans.evaluate(build_model(config, umls), umls, "valid").to_dict()
    for result in _run_group(tmp_path, _evaluated):
        assert result["queries"] == alone["queries"]
        for key in ("mrr", "mr", "hits@1", "hits@10", "ndcg@5"):
            assert result[key] == pytest.approx(alone[key], abs=1e-12), key
            assert result["head"][key] == pytest.approx(alone["head"][key], abs=1e-12), key


def _trained(sampler, rank):
    config = dans.TrainConfig(
        sampler=sampler, dim=8, epochs=2, eval_every=2, batch_size=2000, negatives=4, device="cpu"
    )
    trainer = build_trainer(config, load_graph(config), torch.device("cpu"))
    trainer.fit()
    return trainer.model.state_dict(), trainer.sampler.training_state()["module"]


@pytest.mark.parametrize("sampler", ["dans", "kbgan", "nscaching", "mcns"])
def test_every_process_ends_with_the_same_model_and_sampler(tmp_path, sampler):
    (model, learned), (other_model, other_learned) = _run_group(
        tmp_path, functools.partial(_trained, sampler)
    )
    assert learned, "the sampler must have state for the check to mean anything"
    for mine, theirs in ((model, other_model), (learned, other_learned)):
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            assert torch.equal(value, theirs[key]), key


# ------------------------------------------------------------------------- torchrun, for real

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
ARGS = ["--sampler", "dans", "--epochs", "6", "--eval-every", "2", "--device", "cpu", "--quiet"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _dans(*args, processes=1, wait=True):
    command = [*TORCHRUN, f"--nproc-per-node={processes}"] if processes > 1 else [sys.executable]
    process = subprocess.Popen(
        [*command, "-m", "dans", "train", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        start_new_session=True,
    )
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()[-2000:]
    return stdout.decode()


def _descendants(pid):
    """The processes ``pid`` started, and theirs (Linux's /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [found for child in map(int, children) for found in (child, *_descendants(child))]


def _kill_tree(pid):
    """SIGKILL ``pid`` and every process under it, as a crash would. torchrun starts each
    worker in a session of its own, so killing torchrun's process group alone would leave the
    workers training on as orphans beside the resumed run."""
    for process in (*_descendants(pid), pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def _test_metrics(out):
    return json.loads((out / "metrics.json").read_text())["test"]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "run"
    stdout = _dans(*ARGS, "--out", out, processes=2)
    return out, stdout


def test_two_processes_reach_the_mrr_of_one_within_003(tmp_path, two_processes):
    out, stdout = two_processes
    _dans(*ARGS, "--out", tmp_path / "one")
    two, one = _test_metrics(out)["mrr"], _test_metrics(tmp_path / "one")["mrr"]
    assert one > 0.2, "the budget must train the model for the comparison to mean anything"
    assert abs(two - one) <= 0.03, (two, one)
    # Rank 0 alone reported, and wrote a finished run directory.
    assert stdout.count("test (realistic ranks, filtered)") == 1
    assert sorted(p.name for p in out.iterdir()) == [
        ".dans.json",
        ".dans.lock",
        "checkpoint.pt",
        "config.toml",
        "entities.tsv",
        "log.csv",
        "metrics.json",
        "provenance.json",
        "relations.tsv",
    ]


def test_two_processes_killed_and_resumed_end_as_if_never_stopped(tmp_path, two_processes):
    out = tmp_path / "run"
    killed = _dans(*ARGS, "--out", out, processes=2, wait=False)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None:
        try:
            if RunDirectory(out).load_state()["epoch"] >= 2:
                break
        except (dans.DansError, TypeError):
            pass
        time.sleep(0.1)
    assert killed.poll() is None, "the run ended before it could be killed"
    _kill_tree(killed.pid)
    killed.wait()
    _dans("--resume", out, processes=2)
    resumed, whole = _test_metrics(out), _test_metrics(two_processes[0])
    for key in ("mrr", "mr", "hits@1", "hits@10", "ndcg@5"):
        assert resumed[key] == pytest.approx(whole[key], abs=1e-6), key


def test_an_error_only_rank_0_sees_ends_every_process_with_it_at_once(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    # torchrun looks at its workers every 20 s here: a process that ends before then ended
    # itself, with the error rank 0 left it (at 5 s, a rank still starting on a loaded machine
    # was ended by torchrun before it could say so).
    command = [*TORCHRUN, "--monitor-interval=20", "--nproc-per-node=2"]
    command += ["-m", "dans", "train", *ARGS, "--out", str(out)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120)
    assert time.monotonic() - started < 60
    error = f"dans train: error: {out}: holds files that are not a dans run"
    lines = [line for line in done.stderr.splitlines() if line.startswith("dans train: error:")]
    assert len(lines) == 2 and all(line.startswith(error) for line in lines), done.stderr
    assert done.returncode != 0 and "exitcode  : 2" in done.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
