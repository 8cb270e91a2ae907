"""A test gateway that answers ``POST /rest/v1/rpc/<function>`` as PostgREST does.

PostgREST, GoTrue and Realtime cannot run here, but the SQL they front can. For each call
the gateway does what PostgREST documents: it verifies the bearer JWT with the project's
secret (no token: the anon role), connects as ``authenticator``, switches to the JWT's
``role`` (``set local role``), sets ``request.jwt.claims`` (and ``request.method``,
``request.path``, ``request.headers``) for the transaction, calls the function with the
JSON object's keys as named arguments, and answers the function's JSON result, or an
error ``{code, message, details, hint}`` with PostgREST's HTTP status for its SQLSTATE
(a function raising SQLSTATE 'PGRST' chooses its own status and body). So the real SQL
runs, and requests and answers have the shapes supabase-py sends and expects.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from psycopg import sql

from wowlab_transport_supabase.testing import jwt

API_ROLES = ("anon", "authenticated", "service_role")

# PostgREST's table of SQLSTATE -> HTTP status (docs: references/errors, "HTTP Status Codes").
_EXACT = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "53400": 500,
    "P0001": 400,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
}
_PREFIX = {
    "08": 503,
    "09": 500,
    "0L": 403,
    "0P": 403,
    "25": 500,
    "28": 403,
    "2D": 500,
    "38": 500,
    "39": 500,
    "3B": 500,
    "40": 500,
    "53": 503,
    "54": 500,
    "55": 500,
    "57": 500,
    "58": 500,
    "F0": 500,
    "HV": 500,
    "P0": 500,
    "XX": 500,
}


def status_for(sqlstate: str, *, anonymous: bool) -> int:
    """PostgREST's HTTP status for a PostgreSQL error code."""
    if sqlstate == "42501":
        return 401 if anonymous else 403
    if sqlstate in _EXACT:
        return _EXACT[sqlstate]
    return _PREFIX.get(sqlstate[:2], 400)


@dataclass
class _Function:
    args: dict[str, str]  # name -> SQL type
    defaults: int


class RpcGateway:
    """The gateway; ``start()`` serves on 127.0.0.1 (a free port), ``url`` is the project URL."""

    def __init__(
        self,
        database_url: str,
        *,
        secret: str = jwt.TEST_JWT_SECRET,
        pool_size: int = 8,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
        self.secret = secret
        self.calls = 0
        self._functions: dict[tuple[str, str, frozenset[str]], _Function | None] = {}
        self._pool: queue.Queue[psycopg.Connection[Any]] = queue.Queue()
        for _ in range(pool_size):
            self._pool.put(psycopg.connect(self.conninfo, user="authenticator", autocommit=False))
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # As PostgREST's server does: without it, the header and body writes of an
                # answer wait for the client's delayed ACK (Nagle), some 40 ms each.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                gateway._handle(self)

        class Server(ThreadingHTTPServer):
            # Many nodes connect at once; the default backlog of 5 resets connections.
            request_queue_size = 512

        self.server = Server((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """What a client uses as ``https://PROJECT.supabase.co``."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RpcGateway:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close the connections."""
        self.server.shutdown()
        self.server.server_close()
        while not self._pool.empty():
            self._pool.get_nowait().close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._pool.get()
        try:
            yield conn
        finally:
            if conn.closed:
                conn = psycopg.connect(self.conninfo, user="authenticator", autocommit=False)
            self._pool.put(conn)

    # --- one request -----------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        self.calls += 1
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        path = request.path.split("?", 1)[0]
        if not path.startswith("/rest/v1/rpc/"):
            return _send(
                request,
                404,
                {
                    "code": "PGRST125",
                    "message": f"Invalid path {path}",
                    "details": None,
                    "hint": None,
                },
            )
        name = path.removeprefix("/rest/v1/rpc/")
        schema = request.headers.get("Content-Profile") or "public"
        auth = request.headers.get("Authorization") or ""
        claims: dict[str, Any] = {"role": "anon"}
        if auth:
            if not auth.startswith("Bearer "):
                return _send(request, 401, _err("PGRST301", "Authorization header is not Bearer"))
            try:
                claims = jwt.verify(auth.removeprefix("Bearer ").strip(), self.secret)
            except jwt.InvalidJWT as exc:
                return _send(request, 401, _err("PGRST301", str(exc)))
        role = claims.get("role")
        if role not in API_ROLES:
            return _send(request, 401, _err("PGRST301", f"role {role!r} is not allowed"))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _send(request, 400, _err("PGRST102", "Empty or invalid json"))
        if not isinstance(body, dict):
            return _send(request, 400, _err("PGRST102", "RPC arguments must be a JSON object"))
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._connection() as conn:
            status, payload = self._call(conn, schema, name, body, claims, headers)
        _send(request, status, payload)

    def _signature(
        self, conn: psycopg.Connection[Any], schema: str, name: str, keys: set[str]
    ) -> _Function | None:
        # PostgREST keeps a schema cache; so does the gateway (per schema, name, arguments).
        key = (schema, name, frozenset(keys))
        if key not in self._functions:
            self._functions[key] = self._lookup(conn, schema, name, keys)
        return self._functions[key]

    def _lookup(
        self, conn: psycopg.Connection[Any], schema: str, name: str, keys: set[str]
    ) -> _Function | None:
        rows = conn.execute(
            "select p.proargnames, p.pronargdefaults, "
            "array(select format_type(t, null) from unnest(p.proargtypes) t) "
            "from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname = %s and p.proname = %s",
            (schema, name),
        ).fetchall()
        conn.rollback()
        for argnames, defaults, types in rows:
            argnames = list(argnames or [])[: len(types)]
            required = set(argnames[: len(argnames) - defaults])
            if required <= keys <= set(argnames):
                return _Function(dict(zip(argnames, types, strict=True)), defaults)
        return None

    def _call(
        self,
        conn: psycopg.Connection[Any],
        schema: str,
        name: str,
        body: dict[str, Any],
        claims: dict[str, Any],
        headers: dict[str, str],
    ) -> tuple[int, Any]:
        function = self._signature(conn, schema, name, set(body))
        if function is None:
            args = ", ".join(sorted(body))
            return 404, {
                "code": "PGRST202",
                "message": (
                    f"Could not find the function {schema}.{name}({args}) in the schema cache"
                ),
                "details": "Searched for the function with the given parameters",
                "hint": None,
            }
        names = [a for a in function.args if a in body]
        call = sql.SQL(
            "select to_json({fn}({args})) from json_to_record(%s::json) as r({cols})"
        ).format(
            fn=sql.Identifier(schema, name),
            args=sql.SQL(", ").join(
                sql.SQL("{} := r.{}").format(sql.Identifier(a), sql.Identifier(a)) for a in names
            ),
            cols=sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(a), sql.SQL(function.args[a])) for a in names
            )
            if names
            else sql.SQL("dummy int"),
        )
        try:
            with conn.transaction():
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(claims["role"])))
                conn.execute(
                    "select set_config('request.jwt.claims', %s, true), "
                    "set_config('request.method', 'POST', true), "
                    "set_config('request.path', %s, true), "
                    "set_config('request.headers', %s, true)",
                    (json.dumps(claims), f"/rpc/{name}", json.dumps(headers)),
                )
                row = conn.execute(call, (json.dumps(body),)).fetchone()
            return 200, row[0] if row is not None else None
        except psycopg.Error as exc:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            return _error_response(exc, anonymous=claims.get("role") == "anon")


def _error_response(exc: psycopg.Error, *, anonymous: bool) -> tuple[int, Any]:
    diag = exc.diag
    code = diag.sqlstate or "XX000"
    if code == "PGRST":
        try:
            body = json.loads(diag.message_primary or "{}")
            meta = json.loads(diag.message_detail or "{}")
            return int(meta.get("status", 400)), {
                "code": body.get("code"),
                "message": body.get("message"),
                "details": body.get("details"),
                "hint": body.get("hint"),
            }
        except (ValueError, TypeError):
            return 500, _err("PGRST121", "could not parse the RAISE SQLSTATE 'PGRST' error")
    if code.startswith("08"):
        return 503, _err(code, diag.message_primary or str(exc))
    return status_for(code, anonymous=anonymous), {
        "code": code,
        "message": diag.message_primary or str(exc),
        "details": diag.message_detail,
        "hint": diag.message_hint,
    }


def _err(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": None, "hint": None}


def _send(request: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode("utf-8")
    request.send_response(status)
    request.send_header("Content-Type", "application/json; charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


__all__ = ["API_ROLES", "RpcGateway", "status_for"]
