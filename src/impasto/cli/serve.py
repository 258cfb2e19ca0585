"""`serve`: the web app and HTTP API, with its settings checked before it starts."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import OptionError
from ..options import Setup
from ..serve.options import Limits, Server
from .args import add_options, chosen, given


def configure(command: str, p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    server = Server(**given(args, Server))
    token = server.token if server.token is not None else os.environ.get("IMPASTO_TOKEN")
    if token is not None and not token.strip():
        raise OptionError("--token is empty: every request would be refused")
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as e:
        raise OptionError(
            f"impasto serve needs its extra ({e.name} is missing): pip install 'impasto[serve]'"
        ) from None
    from ..devices import resolve_device
    from ..nets.weights import find_weights

    where = chosen(args, Setup)
    device, weights = where.device, where.weights
    resolve_device(device)  # a bad device is a usage error now, not a failed job later
    if weights is not None:
        find_weights(weights)
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
    )
    print(f"impasto: serving on http://{server.host}:{server.port}/ (data in {server.data_dir})")
    uvicorn.run(app, host=server.host, port=server.port, log_level="warning")
    return 0
