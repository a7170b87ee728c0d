"""Who can reach the data tools' Ray: a local one listens on loopback only and checks a token
only its owner can read; a cluster that checks no token is joined only when the config allows
it. Checked on real Ray processes (a `prepare` run, clusters started in their own processes)."""
import ipaddress
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from data_tools.cli import main
from data_tools.config import RayConfig, load_config
from data_tools.engines import ray as on_ray, ray_access
from dt_helpers import write
from kani_adapt.core.errors import ConfigError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# A Ray cluster of its own (loopback, one CPU) with a Ray Client server, as another user or
# machine would run it: token checks as RAY_AUTH_MODE says. Prints both addresses, then waits
# for its standard input to close.
CLUSTER = """
import os, socket, sys
os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
import ray
from ray.util.client.server.server import serve
ray.init(address="local", num_cpus=1, object_store_memory=80 * 2 ** 20,
         include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="ERROR")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = serve("127.0.0.1", port)
print(ray.get_runtime_context().gcs_address, f"127.0.0.1:{port}", flush=True)
sys.stdin.read()
server.stop(0)
ray.shutdown()
"""

# Joins a cluster as the engine does and runs one task there.
JOIN = """
import sys
sys.path[:0] = {paths!r}
from data_tools.config import RayConfig
from data_tools.engines import ray as on_ray
with on_ray.session():
    ray = on_ray.connect(RayConfig(address=sys.argv[1], allow_unauthenticated=sys.argv[2] == "1"))
    print("ran", ray.get(ray.remote(lambda: 41 + 1).remote()))
"""


def _cluster(tmp_path: Path, env: dict):
    proc = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, **env}, cwd=tmp_path)
    line = proc.stdout.readline().split()
    if len(line) != 2:
        _stop(proc)
        pytest.fail(f"the cluster did not start: {line} {proc.stdout.read()[-2000:]}")
    return proc, line[0], line[1]


def _stop(proc) -> None:
    """Its standard input closed (it stops its Ray), then its process group ended."""
    import signal

    try:
        proc.stdin.close()
        proc.wait(timeout=60)
    except (subprocess.TimeoutExpired, OSError):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _join(address: str, allow: bool, env: dict) -> subprocess.CompletedProcess:
    script = JOIN.format(paths=[str(ROOT), str(HERE)])
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return subprocess.run([sys.executable, "-c", script, address, "1" if allow else "0"],
                          capture_output=True, text=True, timeout=300, env={**clean, **env},
                          start_new_session=True)


@pytest.fixture(scope="module")
def open_cluster(tmp_path_factory):
    """A cluster that checks no token (RAY_AUTH_MODE=disabled)."""
    proc, gcs, client = _cluster(tmp_path_factory.mktemp("open"), {"RAY_AUTH_MODE": "disabled"})
    yield gcs, client
    _stop(proc)


@pytest.fixture(scope="module")
def token_cluster(tmp_path_factory):
    """A cluster that checks a token, kept in a file of mode 600 ((gcs, client, token file))."""
    token = ray_access.private_token()
    proc, gcs, client = _cluster(tmp_path_factory.mktemp("closed"),
                                 {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})
    yield gcs, client, token
    _stop(proc)
    ray_access.remove_token(token)


def _refused_without_token(gcs: str, token: str) -> list[str]:
    """Status codes of the GCS for a call without a token, with a wrong one, with ``token``."""
    import grpc
    from ray.core.generated import gcs_service_pb2 as pb, gcs_service_pb2_grpc as rpc

    codes = []
    for metadata in ((), (("authorization", "Bearer wrong"),),
                     (("authorization", f"Bearer {token}"),)):
        with grpc.insecure_channel(gcs) as channel:
            try:
                rpc.NodeInfoGcsServiceStub(channel).GetAllNodeInfo(
                    pb.GetAllNodeInfoRequest(), metadata=metadata, timeout=20)
                codes.append("OK")
            except grpc.RpcError as err:
                codes.append(err.code().name)
    return codes


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return addr.is_loopback or bool(getattr(addr, "ipv4_mapped", None) and
                                    addr.ipv4_mapped.is_loopback)


def _tree_sockets(root: psutil.Process) -> dict[tuple, str]:
    """{(ip, port, kind): process name} of every socket the tree listens on (TCP) or is bound
    to without a peer (UDP)."""
    found = {}
    for proc in [root] + root.children(recursive=True):
        try:
            for c in proc.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and
                                                      not c.raddr):
                    found[(c.laddr.ip, c.laddr.port, c.type)] = proc.name()
        except psutil.Error:  # a worker that ended between the listing and the look
            pass
    return found


def _token_path(root: psutil.Process) -> str | None:
    for proc in root.children(recursive=True):
        try:
            if proc.name() == "gcs_server":
                return proc.environ().get("RAY_AUTH_TOKEN_PATH", "")
        except psutil.Error:
            pass
    return None


def _gcs_ports(sockets: dict) -> list[int]:
    return sorted({port for (_, port, kind), name in sockets.items()
                   if name == "gcs_server" and kind == socket.SOCK_STREAM})


@pytest.mark.slow
def test_a_local_prepare_on_ray_listens_on_loopback_only_with_a_token_only_its_owner_reads(
        tmp_path):
    from test_ray_engine import DRIVER, _end_group, data_config, speak
    from kani_adapt.models.speaker import embedder as speaker_embedder

    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    for i in range(6):
        speak(tmp_path / "recordings" / ("anna", "ben")[i % 2] / f"c{i:02d}.wav", i)
    speaker_embedder.save(speaker_embedder.build(seed=1), tmp_path / "embedder")
    config = data_config(tmp_path, "one")
    (tmp_path / "codec").mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(paths=[str(ROOT), str(HERE)], folder=str(tmp_path / "codec")))
    proc = subprocess.Popen([sys.executable, str(driver), "prepare", str(config), "--engine",
                             "ray", "tokenize.max_batch_size=1"], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(proc.pid)
    sockets, token, codes, modes = {}, None, [], None
    try:
        end = time.monotonic() + 400
        while proc.poll() is None and time.monotonic() < end:
            now = _tree_sockets(root)
            sockets.update(now)
            token = token or _token_path(root)
            if token and not codes and _gcs_ports(now) and Path(token).is_file():
                modes = os.stat(token), os.stat(Path(token).parent)
                gcs = f"127.0.0.1:{_gcs_ports(now)[0]}"
                codes = _refused_without_token(gcs, Path(token).read_text().strip())
            time.sleep(0.3)
        out = proc.communicate(timeout=120)[0]
    finally:
        _end_group(proc)
    assert proc.returncode == 0, out[-3000:]
    names = set(sockets.values())
    assert {"gcs_server", "raylet"} <= names and len(sockets) >= 5, sockets  # Ray was seen
    beyond = {k: v for k, v in sockets.items() if not _loopback(k[0])}
    assert beyond == {}, f"listening beyond loopback: {beyond}"
    assert token, "the cluster reads its token from a file of its own (RAY_AUTH_TOKEN_PATH)"
    assert not Path(token).is_relative_to(Path.home() / ".ray") and modes, token
    mode, folder = modes
    assert stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == os.getuid()
    assert stat.S_IMODE(folder.st_mode) == 0o700
    # a client without the token (or with a wrong one) is refused; the owner's token works
    assert codes == ["UNAUTHENTICATED", "UNAUTHENTICATED", "OK"]
    assert not Path(token).exists(), "the run's token is removed when its Ray stops"
    assert (tmp_path / "one" / "dataset" / "report.json").exists()


@pytest.mark.slow
def test_a_cluster_that_checks_no_token_is_refused_unless_the_config_allows_it(
        tmp_path, open_cluster, capsys):
    import ray

    gcs, client = open_cluster
    assert not ray_access.checks_tokens(gcs, client=False)
    assert not ray_access.checks_tokens(client, client=True)
    for address in (gcs, f"ray://{client}"):
        with pytest.raises(ConfigError, match="does not check tokens.*allow_unauthenticated"):
            on_ray.connect(RayConfig(address=address))
        assert not ray.is_initialized()  # refused before anything was sent
    config = tmp_path / "data.yaml"
    config.write_text("work: work\ningest:\n  sources:\n    - path: in\n")
    write(tmp_path / "in" / "a" / "c0.wav", np.zeros(22050, np.float32), 22050, "a clip")
    assert main(["ingest", str(config), "--engine", "ray", "--ray-address", gcs]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ray.address") and "\n" not in err
    joined = _join(gcs, allow=True, env={"RAY_AUTH_MODE": "disabled"})
    assert "ran 42" in joined.stdout, joined.stdout + joined.stderr[-3000:]


@pytest.mark.slow
def test_a_cluster_that_checks_a_token_is_joined_with_it_and_refuses_a_client_without(
        tmp_path, token_cluster):
    gcs, client, token = token_cluster
    assert ray_access.checks_tokens(gcs, client=False)
    assert ray_access.checks_tokens(client, client=True)
    # the token's file is enough: token checks are turned on for a cluster that asks
    joined = _join(gcs, allow=False, env={"RAY_AUTH_TOKEN_PATH": str(token)})
    assert "ran 42" in joined.stdout, joined.stdout + joined.stderr[-3000:]
    none = _join(gcs, allow=False, env={"HOME": str(tmp_path)})  # no token anywhere
    assert none.returncode != 0 and "ran" not in none.stdout
    assert "checks tokens and this client has none" in none.stderr.splitlines()[-1]
    wrong = ray_access.private_token()
    try:
        refused = _join(f"ray://{client}", allow=False, env={"RAY_AUTH_TOKEN_PATH": str(wrong)})
    finally:
        ray_access.remove_token(wrong)
    assert refused.returncode != 0 and "ran" not in refused.stdout
    assert "refused this client's token" in refused.stderr.splitlines()[-1]
    # last: the Ray Client server stops its cluster when its last client leaves
    joined = _join(f"ray://{client}", allow=False, env={"RAY_AUTH_TOKEN_PATH": str(token)})
    assert "ran 42" in joined.stdout, joined.stdout + joined.stderr[-3000:]


@pytest.mark.slow
def test_local_sessions_in_a_row_each_check_their_own_token_and_restore_the_environment():
    import ray

    before = {k: os.environ.get(k) for k in ray_access.START_VARS}
    tokens = []
    for _ in range(2):  # the second start must not use the token the process read first
        with on_ray.session():
            started = on_ray.connect(RayConfig(num_cpus=1, object_store_mb=80))
            assert started.get(started.remote(lambda: 41 + 1).remote()) == 42
            assert started.util.get_node_ip_address() == "127.0.0.1"
            token = on_ray._session["token"]
            tokens.append(token.read_text())
        assert not token.exists() and not ray.is_initialized()
    assert tokens[0] != tokens[1]
    assert {k: os.environ.get(k) for k in ray_access.START_VARS} == before


def test_the_token_file_is_private_new_each_time_and_removed_with_its_folder():
    token, other = ray_access.private_token(), ray_access.private_token()
    try:
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
        assert len(token.read_text()) == 64 and token.read_text() != other.read_text()
    finally:
        ray_access.remove_token(token)
        ray_access.remove_token(other)
    assert not token.parent.exists() and not other.parent.exists()


def test_loopback_addresses_are_told_apart():
    assert all(map(ray_access.is_loopback, ("127.0.0.1:6379", "localhost:1", "[::1]:5",
                                            "::ffff:127.0.0.1:8")))
    assert not any(map(ray_access.is_loopback, ("10.0.0.5:6379", "head:6379", "0.0.0.0:1",
                                                "[::]:2")))


def test_allow_unauthenticated_is_a_typed_key_of_the_ray_section(tmp_path):
    config = tmp_path / "data.yaml"
    config.write_text("work: work\nray:\n  allow_unauthenticated: true\n")
    assert load_config(config).ray.allow_unauthenticated is True
    assert load_config(tmp_path / "data.yaml", ["ray.allow_unauthenticated=false"]
                       ).ray.allow_unauthenticated is False
    assert RayConfig().allow_unauthenticated is False
    config.write_text("work: work\nray:\n  allow_unauthenticated: 'maybe'\n")
    with pytest.raises(ConfigError, match="allow_unauthenticated"):
        load_config(config)
