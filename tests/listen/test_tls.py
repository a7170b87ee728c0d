"""HTTPS with ``--certfile``/``--keyfile`` (a self-signed certificate made here with the
``cryptography`` package), and the warning when the test is served beyond loopback without it."""
import datetime
import ipaddress
import socket
import ssl
import time

import pytest

from kani_adapt.cli.main import main
from kani_adapt.listen.server import Limits
from tests.listen.attacks import PARTIAL_HEAD, raw_exchange, status_of
from tests.listen.served import request, serving, started, token, valid


@pytest.fixture(scope="session")
def cert(tmp_path_factory):
    """(certificate, key) PEM files of a self-signed certificate for localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=7))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def _trusting(certfile) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certfile))


def test_the_test_is_served_over_https_with_a_certificate_and_key(eval_dir, cert):
    with serving(eval_dir, certfile=cert[0], keyfile=cert[1]) as (app, port):
        tls, tok = _trusting(cert[0]), token(app, "anna")
        status, state = request(port, "GET", f"/l/{tok}/state", tls=tls)
        assert status == 200 and state["listener"] == "anna"
        trial = state["trial"]
        status, _ = request(port, "POST", f"/l/{tok}/answer", {"trial": trial["id"], "answer": valid(trial)},
                            headers={"Origin": f"https://127.0.0.1:{port}"}, tls=tls)
        assert status == 200 and len({r["trial"] for r in app.store.judgements()}) == 1
        # plain HTTP on the HTTPS port gets no page
        reply = raw_exchange(port, f"GET /l/{tok}/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), timeout=10)
        assert status_of(reply) in (None, 400) and b"anna" not in reply
        # a client that does not trust the certificate learns nothing
        with pytest.raises(ssl.SSLError):
            request(port, "GET", f"/l/{tok}/state", tls=ssl.create_default_context())


def test_over_https_a_request_head_that_never_ends_is_closed_within_the_timeout(eval_dir, cert):
    limits = Limits(request_timeout=1.0, idle_timeout=1.0)
    with serving(eval_dir, limits=limits, certfile=cert[0], keyfile=cert[1]) as (app, port):
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                _trusting(cert[0]).wrap_socket(raw, server_hostname="localhost") as conn:
            conn.sendall(PARTIAL_HEAD)
            conn.settimeout(limits.request_timeout + 5)
            started = time.monotonic()
            try:
                assert conn.recv(1024) == b""
            except (ssl.SSLError, ConnectionError):
                pass  # closed without a TLS close_notify
            assert time.monotonic() - started < limits.request_timeout + 1.5


@pytest.mark.parametrize("args, message", [
    (["--certfile", "cert.pem"], "together"),
    (["--certfile", "missing.pem", "--keyfile", "missing.pem"], "no such file"),
    (["--certfile", "garbage.pem", "--keyfile", "garbage.pem"], "not a PEM certificate"),
])
def test_bad_tls_options_end_in_one_line(eval_dir, capsys, monkeypatch, args, message):
    (eval_dir / "garbage.pem").write_text("not a certificate\n")
    monkeypatch.chdir(eval_dir)
    assert main(["listen", str(eval_dir), "--port", "0", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_serving_beyond_loopback_warns_without_tls_and_not_with_it(eval_dir, cert):
    with started(eval_dir, "--host", "0.0.0.0") as (links, lines, _):
        printed = "".join(lines)
        assert "WARNING: serving on 0.0.0.0 over plain HTTP" in printed
        assert links and all(scheme == "http" for scheme, *_ in links)
    with started(eval_dir, "--host", "0.0.0.0", "--certfile", str(cert[0]), "--keyfile", str(cert[1])) \
            as (links, lines, _):
        assert "WARNING" not in "".join(lines)
        scheme, _, port, tok = links[0]
        assert scheme == "https"
        assert request(port, "GET", f"/l/{tok}/state", tls=_trusting(cert[0]))[0] == 200
