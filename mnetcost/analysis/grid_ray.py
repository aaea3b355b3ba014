"""The Ray executor of ``mnetcost grid --executor ray``: one Ray task per run, each asking for
its CPUs and GPUs, each carrying the run out exactly as the local executor does
(:func:`mnetcost.analysis.grid.run_one`: ``mnetcost train`` in a subprocess, so the run folder's
lock is taken by ``train`` and a failing run is one failed outcome).

Ray is imported only inside :func:`run_ray` (the ``[ray]`` extra). On a cluster, pass its address
(``--address``, or ``RAY_ADDRESS`` in the environment); every node needs mnetcost installed and
the grid's folder and dataset at the same paths (a shared filesystem). Without an address a
local Ray instance is started for the grid and stopped afterwards.
"""
from __future__ import annotations

import os
from typing import Callable

from mnetcost.analysis.grid import Task, _outcome, FolderState, run_one
from mnetcost.errors import MnetcostError


def execute(task: dict) -> dict:
    """The body of one Ray task (importable by reference on every worker)."""
    return run_one(task)


def run_ray(tasks: list[Task], *, address: str | None = None, local_cpus: int | None = None, cpus_per_run: float = 1,
            gpus_per_run: float = 0, report: Callable[[int, int, dict], None] | None = None,
            note: Callable[[str], None] = lambda message: None) -> list[dict]:
    """Submit every task, collect the outcomes as they finish (in that order)."""
    import ray

    started = False
    if not ray.is_initialized():
        options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        address = address or os.environ.get("RAY_ADDRESS") or None
        try:
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=local_cpus or os.cpu_count() or 1, num_gpus=None, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise MnetcostError(f"--executor ray: cannot start or reach {where}: {str(exc).splitlines()[0]}") from None
        started = True
    pending: dict = {}
    try:
        resources = ray.cluster_resources()
        for name, wanted, option in (("CPU", cpus_per_run, "--cpus-per-run"), ("GPU", gpus_per_run, "--gpus-per-run")):
            if wanted and resources.get(name, 0) < wanted:
                raise MnetcostError(f"{option} {wanted:g}: the Ray cluster has {resources.get(name, 0):g} {name}s "
                                    "in all, so no run could ever start")
        note(f"Ray: {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs; "
             f"{len(tasks)} runs, each {cpus_per_run:g} CPU and {gpus_per_run:g} GPU")
        remote = ray.remote(execute)
        for task in tasks:
            ref = remote.options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0,
                                 name=f"mnetcost train {task.run['name']}").remote(task.as_dict())
            pending[ref] = task
        outcomes = []
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker itself died (node lost, out of memory)
                    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    outcome = _outcome(task, FolderState("unknown"), "failed", f"Ray task failed: {message}")
                outcomes.append(outcome)
                if report is not None:
                    report(len(outcomes), len(tasks), outcome)
        return outcomes
    except KeyboardInterrupt:
        for ref in pending:  # a running task gets KeyboardInterrupt; run_one passes SIGINT on to its
            ray.cancel(ref)  # train, which stops with its last completed epoch saved
        raise
    finally:
        if started:
            ray.shutdown()
