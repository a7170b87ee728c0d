"""Who can reach the Ray the data tools run on.

A local Ray (started for a run) listens on loopback only and checks a token that only this
user can read: a fresh one per run, in a private file (mode 600 in a folder of mode 700) that
is deleted when the run's Ray stops. A cluster joined with ``ray.address`` must check tokens
too: it is asked before anything is sent to it, and refused unless the config says
``ray.allow_unauthenticated: true``.

What this relies on in Ray 2.60 (tests/data_tools/test_ray_access.py checks it on a real Ray):

- its servers (GCS, raylet, workers, the driver, the dashboard and runtime-env agents) listen
  on loopback only when the node's address is 127.0.0.1; ``ray.init`` rewrites a loopback
  address into the machine's network address unless it thinks clusters are off
  (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read when ``ray`` is imported, so the driver's
  copy of that switch is set too while Ray starts);
- a new local cluster turns token checks on when ``RAY_AUTH_MODE`` is unset and reads the
  token from ``RAY_AUTH_TOKEN``, else from the file ``RAY_AUTH_TOKEN_PATH``, else from
  ``~/.ray/auth_token`` (which it would write with mode 644 and reuse for every cluster);
- a process keeps the token it read: the cache is reset before each start or join;
- a server that checks tokens answers a call with a wrong one ``UNAUTHENTICATED``.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from kani_adapt.core.errors import ConfigError

LOOPBACK = "127.0.0.1"
TOKEN_FILE = "auth_token"
PROBE_SECONDS = 10.0
# What Ray reads at start for its address and token: set while a local Ray starts, then restored.
START_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")


def private_token() -> Path:
    """A new random token in a file only this user can read (the folder is mode 700)."""
    folder = Path(tempfile.mkdtemp(prefix="kani-adapt-ray-"))
    path = folder / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32))
    return path


def remove_token(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path.parent, ignore_errors=True)


@contextlib.contextmanager
def local_start(token: Path):
    """While a local Ray starts: loopback only, token checks on, this run's token."""
    saved = {k: os.environ.get(k) for k in START_VARS}
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):  # unset: Ray turns checks on itself
        os.environ.pop(key, None)
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)
    try:
        with single_machine():
            yield
    finally:
        _restore(saved)


@contextlib.contextmanager
def single_machine():
    """Ray keeps 127.0.0.1 as the node's address (and so listens on loopback only)."""
    from ray._private import ray_constants
    from ray._raylet import AuthenticationTokenLoader

    saved = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # Ray's processes started now
    before, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
    AuthenticationTokenLoader.instance().reset_cache()
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before
        _restore({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": saved})


def _restore(saved: dict) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def check_local(ray) -> None:
    """Raise unless the local Ray just started listens on loopback and checks tokens."""
    node = ray.util.get_node_ip_address()
    if node != LOOPBACK:
        raise ConfigError(f"a local Ray came up on {node}, not {LOOPBACK}, so it would listen "
                          f"beyond this machine; it was stopped (Ray {ray.__version__}: the "
                          "data tools are checked with 2.60.0)")
    gcs = ray.get_runtime_context().gcs_address
    if not checks_tokens(gcs, client=False):
        raise ConfigError(f"a local Ray came up at {gcs} without checking tokens; it was "
                          f"stopped (Ray {ray.__version__}: the data tools are checked with "
                          "2.60.0)")


def join_target(address: str) -> tuple[str, bool]:
    """(host:port to ask, whether it is a Ray Client server) of a ``ray.address``."""
    if address.startswith("ray://"):
        return address[len("ray://"):], True
    if address == "auto":
        from ray._private.services import get_ray_address_from_environment

        try:
            found = get_ray_address_from_environment("auto", None)
        except ConnectionError:
            found = None
        if not found or found == "auto":
            raise ConfigError("ray.address auto: no Ray cluster runs on this machine; start "
                              "one with `ray start --head`, or leave ray.address empty")
        return found, False
    return address, False


def check_join(address: str, allow_unauthenticated: bool) -> str:
    """The address to join, asked before anything is sent to it: a cluster that does not check
    tokens is refused (unless allowed); one that does must accept this client's token (read
    as Ray reads it: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)."""
    target, client = join_target(address)
    where = f"ray.address {address!r}"
    if not checks_tokens(target, client):
        if allow_unauthenticated:
            return f"ray://{target}" if client else target
        raise ConfigError(f"{where}: that Ray cluster does not check tokens, so anyone who "
                          "reaches its ports can run code on it; start it with "
                          "RAY_AUTH_MODE=token (docs/distributed.md), or set "
                          "ray.allow_unauthenticated: true on an isolated network")
    own = _own_token()
    if not own:
        raise ConfigError(f"{where}: the cluster checks tokens and this client has none "
                          f"(or RAY_AUTH_MODE=disabled); {TOKEN_HINT}")
    if not ask(target, client, own):
        raise ConfigError(f"{where}: the cluster refused this client's token; {TOKEN_HINT}")
    return f"ray://{target}" if client else target


TOKEN_HINT = ("export RAY_AUTH_TOKEN_PATH=<a file, mode 600, holding the cluster's token> "
              "(docs/distributed.md)")


def _own_token() -> tuple:
    """gRPC metadata with this process's token, token checks turned on as Ray does for a
    cluster it finds itself (``address="auto"``); () when there is no token."""
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available)
    from ray._raylet import AuthenticationTokenLoader

    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()
    if not maybe_enable_token_auth_if_token_available(warn_if_disabled=False):
        return ()
    return tuple(loader.get_token_for_http_header().items()) if loader.has_token() else ()


def checks_tokens(target: str, client: bool) -> bool:
    """Whether the Ray server at ``target`` refuses a call carrying a wrong token."""
    return not ask(target, client, (("authorization", f"Bearer not-{secrets.token_hex(8)}"),))


def is_loopback(target: str) -> bool:
    host = target.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


def ask(target: str, client: bool, metadata: tuple) -> bool:
    """Whether the Ray server at ``target`` answers a call carrying ``metadata`` (GCS:
    ``GetAllNodeInfo``; Ray Client: a ping): False when it refuses it unauthenticated,
    ConfigError when it cannot be reached."""
    import grpc

    channel = grpc.insecure_channel(target)
    try:
        if client:
            from ray.core.generated import ray_client_pb2 as pb, ray_client_pb2_grpc as rpc

            rpc.RayletDriverStub(channel).ClusterInfo(
                pb.ClusterInfoRequest(type=pb.ClusterInfoType.PING), metadata=metadata,
                timeout=PROBE_SECONDS, wait_for_ready=True)
        else:
            from ray.core.generated import gcs_service_pb2 as pb, gcs_service_pb2_grpc as rpc

            rpc.NodeInfoGcsServiceStub(channel).GetAllNodeInfo(
                pb.GetAllNodeInfoRequest(), metadata=metadata, timeout=PROBE_SECONDS,
                wait_for_ready=True)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            return False
        raise ConfigError(f"Ray at {target}: cannot be reached ({err.code().name}); check "
                          "ray.address and that the cluster is running") from None
    finally:
        channel.close()
    return True
