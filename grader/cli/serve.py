"""``grader serve``: an event's pages and its grading workers until SIGINT or SIGTERM, with the
parsing of its options (``--lease``, the HTTPS proxy's, the slow clients' limits).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence

from grader.cli.options import (
    STATE_HELP,
    announced,
    detect_device,
    executor_options,
    gpu_ids,
    resolve_sandbox,
    sandbox_option,
    validate_options,
)
from grader.core import Settings, UsageError
from grader.server.web import HSTS_S, ProxyOptions, add_limit_options

__all__ = ["DEFAULT_LEASE_S", "add_parser", "cmd_serve", "proxy_options"]

DEFAULT_LEASE_S = 60.0  # as grader.server.store.jobs.DEFAULT_LEASE_S (not imported: it loads SQLAlchemy)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``grader`` parser's commands."""
    serve = sub.add_parser(
        "serve", help="serve an event's pages and grade its submissions",
        description="Serve event NAME on http://HOST:PORT/ (teams upload notebooks and see their scorecards; "
        "the coach's pages are under /coach) and grade queued submissions in worker threads through the "
        "same pipeline as grader check. Jobs a killed server left running are queued again at start; "
        "SIGINT or SIGTERM stops it, putting running jobs back in the queue.")
    serve.add_argument("--event", required=True, metavar="NAME", help="the event to serve (grader event create)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="submissions graded at once (default: one per GPU of --gpus, else 1); each kernel "
                       "gets cores/N threads")
    serve.add_argument("--state", metavar="DIR", help=STATE_HELP)
    serve.add_argument("--database-url", metavar="URL",
                       help="SQLAlchemy database URL, e.g. postgresql+psycopg://USER@HOST/DB (default: SQLite "
                       "in the state folder, with this server its only worker)")
    serve.add_argument("--lease", type=_seconds, default=DEFAULT_LEASE_S, metavar="SECONDS",
                       help="advanced: how long a running job stays this server's without a heartbeat (renewed "
                       "every third of it) before another server, or this one, queues it again; its worker is "
                       f"presumed dead (default {DEFAULT_LEASE_S:g})")
    serve.add_argument("--profile", default="full",
                       help="profile the notebooks run with, one the challenges declare (default: full)")
    serve.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="passed as DEVICE (auto: cuda when an NVIDIA GPU is present)")
    serve.add_argument("--gpus", metavar="IDS",
                       help="GPU ids for the workers, worker n the n-th (CUDA_VISIBLE_DEVICES; run as many workers "
                       "as GPUs for one submission per GPU); default: every GPU nvidia-smi lists when the device "
                       "is cuda")
    serve.add_argument("--all-cpus", action="store_true",
                       help="advanced: let the server's own threads run on every CPU (default: one CPU, the last; "
                       "its grading children and their kernels use them all: on two CPUs this cut the server's "
                       "CPU time for 50 uploads at once by about a third, benchmarks/RESULTS.md)")
    proxy = serve.add_argument_group(
        "behind an HTTPS proxy", "Caddy or nginx ends TLS and forwards to this server on 127.0.0.1 (README, "
        "'Behind an HTTPS proxy'). Without --https the cookies are not Secure and no HSTS is sent.")
    proxy.add_argument("--https", action="store_true",
                       help="the pages are reached over https through a proxy: session cookies are Secure with the "
                       "__Host- prefix, every response carries Strict-Transport-Security, and a sign-in that "
                       "reaches the server as plain http (X-Forwarded-Proto not https, or not trusted) is refused")
    proxy.add_argument("--hsts", type=_whole_seconds, default=HSTS_S, metavar="SECONDS",
                       help=f"Strict-Transport-Security max-age with --https (default {HSTS_S}, one year; "
                       "0: no header)")
    proxy.add_argument("--forwarded-allow-ips", metavar="IPS",
                       help="comma-separated addresses or networks of the proxy whose X-Forwarded-For and "
                       "X-Forwarded-Proto are trusted (uvicorn's forwarded_allow_ips; default 127.0.0.1,::1, "
                       "a proxy on this machine); '*' trusts any, only when nothing but the proxy can reach the port")
    executor_options(serve, local="the worker threads of this server")
    sandbox_option(serve)
    add_limit_options(serve)  # slow clients: --header-timeout, --body-timeout, --max-connections


def _whole_seconds(text: str) -> int:
    """``--hsts``'s value: whole seconds, 0 or more."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give whole seconds, 0 or more, e.g. 31536000")
    return int(text)


def proxy_options(args: argparse.Namespace) -> ProxyOptions:
    """``grader serve``'s proxy options.

    Raises:
        UsageError: ``--forwarded-allow-ips`` holds something that is not an address, a network or ``*``.
    """
    allowed = args.forwarded_allow_ips
    if allowed is not None:
        items = [a.strip() for a in allowed.split(",") if a.strip()]
        bad = []
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                if item != "*":
                    bad.append(item)
        if bad or not items:
            raise UsageError(f"--forwarded-allow-ips {allowed}: not an IP address or network: "
                             f"{', '.join(bad) or '(none given)'}",
                             fix="e.g. --forwarded-allow-ips 10.0.0.5 or 10.0.0.0/24")
        allowed = ",".join(items)
    return ProxyOptions(https=args.https, hsts_s=args.hsts, forwarded_allow_ips=allowed)


def _seconds(text: str) -> float:
    """``--lease``'s value: a number of seconds above 0 (argparse reports the error)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0, e.g. 60")
    return value


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """``grader serve``: the event's pages and its grading workers until SIGINT or SIGTERM."""
    from grader.pipeline import GradeOptions  # here for start-up time
    from grader.server import KERNEL_NICE
    from grader.server.serve import serve
    from grader.server.store import Store, resolve_state_dir
    from grader.server.web import connection_limits

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: it must be at least 1", fix="pass --workers 1 or more")
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (tcp://host:8786)",
                         fix="start one with `dask scheduler` and pass its address")
    args.challenge = None
    validate_options(args, settings)
    settings.require_data_dir()
    device = detect_device(args.device)
    gpus = gpu_ids(args.gpus, device)
    if args.workers is None:  # one submission per GPU, else one at a time
        args.workers = len(gpus) if gpus and args.executor == "local" else 1
    store = Store(resolve_state_dir(args.state), args.database_url, workers=args.workers)
    try:
        row = store.event(args.event)
        _gpu_challenges_served(settings, args, row.challenges, gpus)
        options = GradeOptions(profile=args.profile, device=device, nice=KERNEL_NICE,
                               sandbox=announced(resolve_sandbox(args.sandbox)))
    except BaseException:
        store.close()
        raise

    def ready(url: str) -> None:
        print(f"serving {args.event} on {url} with {args.workers} worker(s); the coach's pages: {url}coach",
              file=sys.stderr, flush=True)

    return serve(store, settings, options, event=args.event, host=args.host, port=args.port,
                 workers=args.workers, gpus=gpus, embedded=args.database_url is None, on_ready=ready,
                 lease_s=args.lease, scheduler=args.scheduler if args.executor == "dask" else None,
                 scoring=args.scoring, proxy=proxy_options(args), limits=connection_limits(args),
                 freeze_heap=True, one_cpu=not args.all_cpus)


def _gpu_challenges_served(settings: Settings, args: argparse.Namespace, challenges: Sequence[str],
                           gpus: Sequence[str]) -> None:
    """Say what happens to the event's challenges that need a GPU under the profile when this
    server's workers have none: with PostgreSQL they wait for a server with GPUs (a warning);
    on SQLite, where this server is the only worker, nothing would grade them.

    Raises:
        UsageError: on SQLite (embedded), challenges need a GPU and neither --gpus nor a Dask
            cluster gives one.
    """
    from grader.pipeline import gpu_challenges  # here for start-up time

    if gpus or args.executor == "dask":
        return
    waiting = sorted(gpu_challenges(settings, args.profile) & set(challenges))
    if not waiting:
        return
    told = (f"{', '.join(waiting)} need{'s' if len(waiting) == 1 else ''} a GPU under profile {args.profile}, "
            "and this server's workers have none")
    if args.database_url is None:
        raise UsageError(f"{told}: nothing would grade them",
                         fix="serve on a machine with GPUs (--gpus), pass --profile ci, or put the event on "
                         "PostgreSQL with a server that has GPUs beside this one")
    print(f"grader: warning: {told}; their submissions wait in the queue for a server started with --gpus",
          file=sys.stderr)
