"""Setup cell: keep the kernel's shutdown prompt.

Sent to the student's kernel with ``capture.py`` before the first cell; it imports nothing of the
grader. ``benchmarks/run.py`` gives it to every other tool's kernel too (``exec_files``), so that
their comparison is not decided by the race it works around.
"""


def _grader_prompt_shutdown() -> None:
    """Keep the kernel's last sends at shutdown from waiting on a stopped IOPub thread.

    ipykernel 7 has a race at shutdown: after the ``shutdown_request`` handler, the control
    thread flushes ``sys.stdout`` and ``sys.stderr`` and publishes an ``idle`` status, both
    through the IOPub thread, while the main thread is already stopping that thread. Two ways to
    hang were caught (``faulthandler`` in the kernel): the flush waits its ``flush_timeout``
    (10 s), or waking the thread blocks in a zmq send that no one will read. Either way the
    kernel only ends when jupyter_client sends SIGTERM, 2.5 s after the shutdown request,
    before its exit handlers run. From the shutdown request on, this bounds the flush to 0.05 s
    and the control thread's wake-up send to 50 ms, dropping what cannot be sent any more.

    Measured here with plain nbclient (a one-cell notebook, one kernel after another): 4, 7 and
    7 runs in 60, 60 and 80 ended so, their shutdown taking 3.5 s instead of 0.1 s. With the
    flush bound alone (given to the kernel through ``exec_files``), 4 runs in 100 met the race
    and ended by themselves within 0.2 s; through the grader, 1 run in 48 still hung in the
    send, which led to its bound. With both bounds, none of 80 runs through the grader took
    over 0.84 s. ipykernel's pull request 1518 names the same race.
    """
    import sys

    kernel = getattr(get_ipython(), "kernel", None)  # noqa: F821 - defined in every IPython kernel
    do_shutdown = getattr(kernel, "do_shutdown", None)
    if do_shutdown is None:
        return

    def bound_sends() -> None:
        import zmq

        for stream in (sys.stdout, sys.stderr):
            if hasattr(stream, "flush_timeout"):
                stream.flush_timeout = 0.05
        pub_thread = getattr(getattr(kernel, "iopub_socket", None), "io_thread", None)
        if pub_thread is None or not hasattr(pub_thread, "_event_pipe"):
            return
        pub_thread._event_pipe.sndtimeo = 50  # this thread's (the control thread's), in ms
        schedule = pub_thread.schedule

        def schedule_or_drop(f):
            try:
                schedule(f)
            except zmq.Again:  # the IOPub thread is gone: nothing would send it
                pass

        pub_thread.schedule = schedule_or_drop

    def prompt_shutdown(restart):
        try:
            bound_sends()
        except Exception:  # never in the way of the shutdown itself
            pass
        return do_shutdown(restart)

    kernel.do_shutdown = prompt_shutdown


_grader_prompt_shutdown()
del _grader_prompt_shutdown
