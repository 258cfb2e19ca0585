"""`serve`: the web app and HTTP API, and `worker`: the jobs of a shared job store; each
with its settings checked before it starts."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import OptionError
from ..options import Setup
from ..serve.options import Limits, Server, Worker, store_from
from .args import add_options, chosen, given


def configure(command: str, p: argparse.ArgumentParser) -> None:
    if command == "worker":
        add_options(p, Worker)
    else:
        add_options(p, Server)
        add_options(p, Limits)
    add_options(p, Setup, only=("device", "weights"))


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def names(host: str, port: int) -> list[str] | None:
    """The Host headers a server without a token answers to: the address it binds to (and
    localhost's other names, on loopback). None, on every interface, checks none."""
    if host in ("0.0.0.0", "::", ""):
        print(
            "impasto: warning: on every interface without --token, any site's page may "
            "send jobs to this server",
            file=sys.stderr,
        )
        return None
    hosts = LOOPBACK if host in LOOPBACK else (host,)
    return [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in hosts]


def _setup(args: argparse.Namespace) -> tuple[str, str | None]:
    """The device and VGG weights asked for, checked now rather than at the first job."""
    from ..devices import resolve_device
    from ..nets.weights import find_weights

    where = chosen(args, Setup)
    resolve_device(where.device)
    if where.weights is not None:
        find_weights(where.weights)
    return where.device, where.weights


def run(args: argparse.Namespace) -> int:
    if args.command == "worker":
        return work(args)
    server = Server(**given(args, Server))
    server.store = store_from(server.store)
    if server.store is not None and "workers" in given(args, Server):
        raise OptionError(
            "--workers runs jobs in the server with its own store; with --store, start "
            "`impasto worker --store …` processes instead"
        )
    token = server.token if server.token is not None else os.environ.get("IMPASTO_TOKEN")
    if token is not None and not token.strip():
        raise OptionError("--token is empty: every request would be refused")
    extra = "serve" if server.store is None else "scale"
    try:
        import uvicorn

        from ..serve.app import create_app

        if server.store is not None:
            from ..serve import shared  # noqa: F401
    except ImportError as e:
        raise OptionError(
            f"impasto serve needs its extra ({e.name} is missing): pip install 'impasto[{extra}]'"
        ) from None
    device, weights = _setup(args)
    limits = Limits(**given(args, Limits))
    app = create_app(
        server.data_dir,
        fresh=server.fresh,
        hosts=None if token else names(server.host, server.port),
        workers=server.workers,
        token=token,
        limits=limits,
        device=device,
        weights=weights,
        store=server.store,
    )
    where = server.data_dir if server.store is None else "the shared store"
    print(f"impasto: serving on http://{server.host}:{server.port}/ (data in {where})")
    uvicorn.run(app, host=server.host, port=server.port, log_level="warning")
    return 0


def work(args: argparse.Namespace) -> int:
    options = Worker(**given(args, Worker))
    store = store_from(options.store)
    if store is None:
        raise OptionError("a worker needs the shared job store: --store URL or $IMPASTO_STORE")
    try:
        from ..serve.shared import Worker as SharedWorker
    except ImportError as e:
        raise OptionError(
            f"impasto worker needs its extra ({e.name} is missing): pip install 'impasto[scale]'"
        ) from None
    device, weights = _setup(args)
    worker = SharedWorker(
        store, options.methods, options.concurrency, options.lease, device, weights
    )
    print(
        f"impasto: worker for {', '.join(options.methods)} "
        f"({options.concurrency} at a time, device {device})",
        flush=True,
    )
    worker.run()
    return 0
