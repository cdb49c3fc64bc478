"""What a job of a batch runs on: GPU slots, and the CPU threads and GPU its kernels are given.

With N jobs on C cores each kernel gets ``max(1, C // N)`` threads (``OMP_NUM_THREADS`` and
friends), so parallel jobs do not oversubscribe the cores; a job that holds a GPU slot shows its
kernels that GPU only (``CUDA_VISIBLE_DEVICES``). Here, and on a Dask worker.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Sequence
from typing import Any

from grader.core import Settings, visible_gpus
from grader.intake import Submission
from grader.pipeline.grade import GradeOptions

__all__ = ["THREAD_ENV", "gpu_challenges", "gpu_slots", "kernel_env", "longest_deadline", "needs_gpu",
           "worker_kernel_env"]

log = logging.getLogger(__name__)

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "TF_NUM_INTRAOP_THREADS")


def kernel_env(gpu: str | None, jobs: int) -> tuple[tuple[str, str], ...]:
    """The variables a kernel of one of ``jobs`` jobs at once gets here: ``OMP_NUM_THREADS`` and
    friends set to this machine's cores shared among the jobs (none for one job: the kernel's
    defaults), and ``CUDA_VISIBLE_DEVICES`` set to ``gpu`` where one is given."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    env = [(name, threads) for name in THREAD_ENV] if jobs > 1 else []
    if gpu is not None:
        env.append(("CUDA_VISIBLE_DEVICES", gpu))
    return tuple(env)


def gpu_slots(gpus: Sequence[str], jobs: int) -> queue.Queue[str | None]:
    """GPU slots: each GPU as often as needed for ``jobs`` jobs at once; ``None`` without GPUs."""
    slots: queue.Queue[str | None] = queue.Queue()
    if not gpus:
        for _ in range(jobs):
            slots.put(None)
        return slots
    for i in range(max(jobs, len(gpus))):
        slots.put(gpus[i % len(gpus)])
    return slots


def worker_kernel_env() -> tuple[tuple[str, str], ...]:
    """On a Dask worker: the variables its kernels get, as :func:`kernel_env` gives them here.

    Threads (``OMP_NUM_THREADS`` and friends) are the worker's cores shared by the tasks it runs
    at once (its ``nthreads``): the cores are its ``CPU`` resource where it declares one
    (``dask worker --resources CPU=8``), else this machine's usable cores shared among every
    worker thread on the same host (``--nworkers 2`` starts two workers on one machine). They are
    always set: Dask's nanny sets ``OMP_NUM_THREADS=1`` and friends in its workers
    (``distributed.nanny.pre-spawn-environ``), which a kernel would otherwise inherit. The GPU is
    the one the worker was started with: its own ``CUDA_VISIBLE_DEVICES``, where set.

    Method: ``distributed.get_worker()`` (https://distributed.dask.org/en/stable/worker.html),
    ``WorkerState.nthreads`` and ``total_resources``; the host's workers from the scheduler's
    ``Client.scheduler_info``.
    """
    import distributed

    worker: Any = distributed.get_worker()
    slots = max(1, int(worker.state.nthreads))
    cpu = worker.state.total_resources.get("CPU")
    if cpu:
        cores = int(cpu)
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        try:
            workers = distributed.get_client().scheduler_info(n_workers=-1)["workers"].values()
            slots = max(slots, sum(int(w.get("nthreads", 1)) for w in workers if w.get("host") == worker.ip))
        except Exception as err:  # the scheduler's view refines the share: without it, this worker's own
            log.warning("could not count the Dask workers on this host (%s); kernels get %d cores / "
                        "%d threads", err, cores, slots)
    threads = str(max(1, cores // slots))
    env = [(name, threads) for name in THREAD_ENV]
    gpu = visible_gpus()
    if gpu is not None:
        env.append(("CUDA_VISIBLE_DEVICES", gpu))
    return tuple(env)


def gpu_challenges(settings: Settings, profile: str) -> frozenset[str]:
    """The challenges of the project whose notebooks need a GPU under ``profile``
    (:meth:`grader.core.challenge.Challenge.needs_gpu`).

    Raises:
        ChallengeError: a challenge.toml that does not load.
    """
    from grader.core import challenge_ids, load_challenge

    return frozenset(cid for cid in challenge_ids(settings.project_dir)
                     if load_challenge(settings.project_dir, cid).needs_gpu(profile))


def longest_deadline(settings: Settings, profile: str) -> int:
    """The longest time any challenge's run may take under ``profile`` before it is killed, in
    seconds (:meth:`grader.core.Challenge.hard_limit_for`)."""
    from grader.core import challenge_ids, load_challenge

    return max((load_challenge(settings.project_dir, cid).hard_limit_for(profile)
                for cid in challenge_ids(settings.project_dir)), default=1800)


def needs_gpu(submission: Submission, settings: Settings, options: GradeOptions, needing: frozenset[str]) -> bool:
    """Whether a notebook of ``submission`` is for a challenge of ``needing`` (those whose
    profile needs a GPU), told as grading tells it (``options.challenge``, else the notebook's
    metadata or file name); a notebook that does not read needs none."""
    if not needing:
        return False
    from grader.core import challenge_ids
    from grader.intake import MalformedNotebook, challenge_of, read_notebook

    known = challenge_ids(settings.project_dir)
    for path in submission.notebooks:
        try:
            nb = read_notebook(path) if not options.challenge else None
        except MalformedNotebook:
            nb = None
        if challenge_of(path, nb, known, explicit=options.challenge) in needing:
            return True
    return False

