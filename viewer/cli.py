"""`reasoning-viewer`: start the app, ask one question headless, or serve the demo endpoint.

A thin launcher. `ask` must stay importable without Streamlit (it runs on
servers and in scripts), so Streamlit is only imported by the app itself, in a
child process.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from viewer.request_builder import REASONING_EFFORTS

DEFAULT_PORT = 8501


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "ask":
            return _ask(args)
        if args.command == "compare":
            from viewer.compare_cli import main as compare_main

            return compare_main(args)
        if args.command == "serve-demo":
            return _serve_demo(args)
        return _launch_app(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """stdout's reader closed the pipe (`ask ... | head -c 50`): exit quietly, as `cat` or `yes` would.

    Later writes (the interpreter flushes stdout at exit) would raise again and print a traceback, so
    stdout is pointed at /dev/null first. 141 = 128 + SIGPIPE, the status a shell shows for such a pipe.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a real file (tests capture it): nothing will be flushed to a pipe at exit
    finally:
        os.close(devnull)
    return 141


# -- argument parsing ------------------------------------------------------------------


class _NoKeyOnCommandLine(argparse.Action):
    """Keys typed on a command line end up in shell history and `ps`: refuse them with a way out."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            f"{option_string} is not accepted: API keys are read from an environment variable. "
            "Export the key (e.g. OPENAI_API_KEY=...) and pass --api-key-env NAME if it is not OPENAI_API_KEY."
        )


def _add_endpoint_flags(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "--base-url",
        required=required and not os.environ.get("OPENAI_BASE_URL"),
        default=os.environ.get("OPENAI_BASE_URL"),
        help="OpenAI-compatible base URL, with or without /v1 (env OPENAI_BASE_URL)",
    )
    p.add_argument("--model", help="model id as the server names it")
    p.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key (default OPENAI_API_KEY); optional for local servers",
    )
    p.add_argument("--api-key", nargs="?", action=_NoKeyOnCommandLine, help=argparse.SUPPRESS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reasoning-viewer",
        description="A local chat UI for reasoning models. With no command, starts the web app.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind the app to (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"app port (default {DEFAULT_PORT})")
    _add_endpoint_flags(parser, required=False)
    parser.add_argument("--db", help="SQLite file for conversations (default: in your user data directory)")
    parser.add_argument("--demo", action="store_true", help="use the built-in replay server instead of a real endpoint")
    sub = parser.add_subparsers(dest="command")

    ask = sub.add_parser("ask", help="ask one question and stream the reply to the terminal")
    ask.add_argument("prompt", help="the user message")
    _add_endpoint_flags(ask, required=True)
    ask.add_argument("--system", help="system prompt")
    ask.add_argument("--max-tokens", type=int, help="token budget for reasoning + answer")
    ask.add_argument("--temperature", type=float)
    ask.add_argument("--reasoning-effort", choices=REASONING_EFFORTS, help="the same choices as the app's sidebar")
    ask.add_argument("--json", action="store_true", help="print one JSON object at the end, nothing while streaming")
    ask.add_argument(
        "--outline", action="store_true", help="print the reasoning's steps as numbered titles, not its full text"
    )
    ask.add_argument("--connect-timeout", type=float, default=5.0, help="seconds (default 5)")
    ask.add_argument(
        "--read-timeout",
        type=float,
        default=600.0,
        help="seconds of silence tolerated mid-stream (default 600: long prompts can take minutes to prefill)",
    )
    ask.add_argument(
        "--assume-thinking",
        action="store_true",
        help="the model's template pre-fills the opening <think>: treat the reply as reasoning from the start",
    )

    cmp = sub.add_parser(
        "compare",
        help="ask several models the same question at once and compare their reasoning metrics",
        description="Send one prompt to every --model concurrently and print a table of the metrics "
        "(waited, thought, answered, total, reasoning and answer tokens, tok/s, finish reason, steps).",
    )
    cmp.add_argument("prompt", help="the user message")
    cmp.add_argument(
        "--base-url",
        default=os.environ.get("OPENAI_BASE_URL"),
        help="OpenAI-compatible base URL for models given without @URL (env OPENAI_BASE_URL)",
    )
    cmp.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="MODEL[KEY=VALUE,...][@URL]",
        help="a model to compare (repeat it), with its own settings in brackets (thinking=on|off|default, "
        "effort=LEVEL, max_tokens=N) and its own endpoint after @, "
        "e.g. 'qwen3[thinking=off]' or 'demo-r1[effort=high]@http://127.0.0.1:8000/v1'",
    )
    cmp.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="as for ask")
    cmp.add_argument("--api-key", nargs="?", action=_NoKeyOnCommandLine, help=argparse.SUPPRESS)
    cmp.add_argument("--system", help="system prompt")
    cmp.add_argument("--max-tokens", type=int, help="token budget for reasoning + answer")
    cmp.add_argument("--temperature", type=float)
    cmp.add_argument("--reasoning-effort", choices=REASONING_EFFORTS)
    cmp.add_argument("--json", action="store_true", help='print one object {"results": [...]} at the end')
    cmp.add_argument("--show", action="store_true", help="print each reply before the table")
    cmp.add_argument("--runs", type=int, default=1, help="repeat N times; report the median and p90 of each metric")
    cmp.add_argument("--connect-timeout", type=float, default=5.0, help="seconds (default 5)")
    cmp.add_argument("--read-timeout", type=float, default=600.0, help="seconds of silence tolerated (default 600)")
    cmp.add_argument("--assume-thinking", action="store_true", help="as for ask")

    demo = sub.add_parser("serve-demo", help="run the OpenAI-compatible replay server on its own")
    demo.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    demo.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    demo.add_argument("--speed", type=float, default=1.0, help="replay speed factor; 0 = no delays")
    demo.add_argument("--fault", help="inject a fault into every reply (see seeds/README.md)")
    demo.add_argument(
        "--seeds-dir",
        default=os.environ.get("REASONING_VIEWER_SEEDS_DIR") or None,
        help="serve your own folder of traces (env REASONING_VIEWER_SEEDS_DIR; format in seeds/README.md)",
    )
    return parser


# -- ask ---------------------------------------------------------------------------------


def _ask(args: argparse.Namespace) -> int:
    from viewer import labels
    from viewer.ask import AskPrinter, build_request, result_object
    from viewer.client import ChatClient
    from viewer.errors import ViewerError
    from viewer.models import AssistantTurn, ErrorInfo
    from viewer.replies import Reply
    from viewer.turn import TurnOptions

    def refuse(message: str) -> int:
        if args.json:  # the promised object comes even when nothing could be sent
            failed = AssistantTurn(error=ErrorInfo(kind="usage", message=message), status="error")
            sys.stdout.write(json.dumps(result_object(failed), ensure_ascii=False) + "\n")
        return _fail(message)

    try:
        client = ChatClient(
            args.base_url,
            api_key_env=args.api_key_env,
            connect_timeout=args.connect_timeout,
            read_timeout=args.read_timeout,
        )
    except ViewerError as exc:
        return refuse(exc.message)
    with client:
        if not args.model:
            return refuse(_model_needed(client))
        request = build_request(args)
        printer: AskPrinter | None = None
        # The same reply object the app streams with, run here in the calling thread; the printer is a
        # viewer that reads each delta's events inline.
        reply = Reply(
            client=client,
            request=request,
            options=TurnOptions(assume_open=args.assume_thinking),
            on_events=None if args.json else (lambda events: printer.on_events(events) if printer else None),
        )
        printer = None if args.json else AskPrinter(sys.stdout, reply.recorder, outline=args.outline)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def _interrupt(signum, frame):  # first Ctrl-C (or a kill): stop now, even mid-silence; keep what came
            reply.stop()
            signal.signal(signum, previous[signum])

        for sig in previous:
            signal.signal(sig, _interrupt)
        try:
            if printer is not None:
                printer.start()
            reply.run()
        finally:
            turn = reply.snapshot()
            if printer is not None:
                printer.finish(turn)  # also gives the terminal's last row back
    if printer is None:
        sys.stdout.write(json.dumps(result_object(turn), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    for note in labels.end_notes(turn):
        hint = " Raise --max-tokens." if note.kind == "budget" else ""
        print(f"reasoning-viewer: {note.text}{hint}", file=sys.stderr)
    if turn.error is not None:
        return 1
    return 130 if turn.stopped else 0


def _model_needed(client) -> str:
    """Why --model is needed, with the server's real model list (or where to find it)."""
    from viewer.errors import ViewerError

    where = f"{client.base_url}/models"
    try:
        models = client.list_models()
    except ViewerError:
        return f"--model is required: pick one of the models listed at {where}"
    if not models:
        return f"--model is required, but the server lists no models at {where}"
    shown = ", ".join(models[:12]) + (f" and {len(models) - 12} more" if len(models) > 12 else "")
    return f"--model is required. The server at {client.base_url} offers: {shown}"


def _fail(message: str) -> int:
    from viewer.labels import tidy

    print(f"reasoning-viewer: {tidy(message)}", file=sys.stderr)
    return 2


# -- serve-demo -------------------------------------------------------------------------


def _serve_demo(args: argparse.Namespace) -> int:
    from viewer.demo.replay import serve_forever

    if args.seeds_dir and not Path(args.seeds_dir).is_dir():
        return _fail(f"the seeds folder {args.seeds_dir} does not exist")
    try:
        serve_forever(args.host, args.port, speed=args.speed, fault=args.fault, seeds_dir=args.seeds_dir)
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    except ValueError as exc:  # a bad --fault spec or a broken trace file
        return _fail(str(exc))
    return 0


# -- the app ----------------------------------------------------------------------------

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_ALL_INTERFACES = ("0.0.0.0", "::", "")


def allowed_hosts(bind: str) -> list[str]:
    """Host names the app's websocket accepts (Streamlit's `server.allowedHosts`), against DNS rebinding.

    A page on a rebinding domain resolves its own name to 127.0.0.1 and would otherwise talk to the app
    (and read the history) with `Host: evil.example`. Default: the loopback names. `--host NAME` adds the
    bound name; binding all interfaces (0.0.0.0 / ::) adds this machine's host name and addresses, the
    names people use to reach it from the network (issue 11, "DNS rebinding").
    """
    hosts = list(_LOOPBACK_NAMES)
    bind = bind.strip().strip("[]")
    if bind in _ALL_INTERFACES:
        import contextlib
        import socket

        names = {socket.gethostname(), socket.getfqdn()}
        for name in list(names):
            with contextlib.suppress(OSError):  # a host name that doesn't resolve is still a name people type
                names.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))
        extra = sorted(n for n in names if n)
    else:
        extra = [bind]
    return hosts + [h for h in extra if h not in hosts]


def _launch_app(args: argparse.Namespace) -> int:
    """Run `streamlit run` on the app as a child process and stay its parent until it ends.

    Settings travel in the environment. SIGINT, SIGTERM and SIGHUP are forwarded to the child and the
    launcher waits for it (killing it if it ignores them), so stopping the launcher never leaves a server
    behind. The child runs in its own session, so a Ctrl-C in the terminal reaches it once, through us.
    """
    problem = _port_problem(args.host, args.port)
    if problem is not None:
        return _fail(problem)
    app = Path(__file__).resolve().parent / "ui" / "app.py"
    env = dict(os.environ)
    for key, value in {
        "REASONING_VIEWER_BASE_URL": args.base_url,
        "REASONING_VIEWER_MODEL": args.model,
        "REASONING_VIEWER_API_KEY_ENV": args.api_key_env,
        "REASONING_VIEWER_DB": args.db,
        "REASONING_VIEWER_DEMO": "1" if args.demo else None,
    }.items():
        if value:
            env[key] = str(value)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.enableXsrfProtection",
        "true",
        *(arg for host in allowed_hosts(args.host) for arg in ("--server.allowedHosts", host)),
        "--server.fileWatcherType",
        "none",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
        # No --theme.base: Streamlit follows the system's light/dark setting (issue 10, item 10).
    ]
    found: list = []  # what the app will find on the usual local ports (probed while it starts)
    probe = None
    if not args.base_url and not args.demo:
        probe = threading.Thread(target=_probe_local_servers, args=(found,), daemon=True)
        probe.start()
    child: subprocess.Popen | None = None
    received: list[int] = []
    forwarded_at = [0.0]

    def forward(signum, frame):
        received.append(signum)
        forwarded_at[0] = forwarded_at[0] or time.monotonic()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, forward) for sig in signals}  # before the child exists: no gap
    try:
        child = subprocess.Popen(cmd, env=env, start_new_session=os.name == "posix")
        if received:  # a signal came while it was being started
            child.send_signal(received[0])
        if _wait_until_bound(child, args.host, args.port):
            print(f"reasoning-viewer: serving on {_app_url(args.host, args.port)}  (Ctrl-C to quit)", file=sys.stderr)
            if probe is not None:
                probe.join(timeout=3)
            note = _endpoint_note(args, found if probe is not None and not probe.is_alive() else None)
            if note:
                print(f"reasoning-viewer: {note}", file=sys.stderr)
        elif child.poll() is not None and not received:
            _fail(f"the app did not start (streamlit exited with code {child.returncode}); see the lines above")
        while True:
            try:
                code = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if received and time.monotonic() - forwarded_at[0] > _STOP_GRACE_S:
                    child.kill()  # it ignored the signal: do not leave it behind
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child is not None and child.poll() is None:  # an unexpected error in the launcher itself
            child.kill()
            child.wait()
    return 128 + received[0] if received else code


_STOP_GRACE_S = 10.0
_LOCAL_NAMES = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def _app_url(host: str, port: int) -> str:
    host = _LOCAL_NAMES.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _can_bind(family: int, address: tuple) -> OSError | None:  # None: it can
    """Would the app's server (tornado: SO_REUSEADDR, v6-only sockets) be able to listen there?"""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return exc
    return None


def _port_problem(host: str, port: int) -> str | None:
    """One line saying why the app could not listen on host:port, checked before anything starts."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot use --host {host}: {exc.strerror}"
    for family, _, _, _, address in infos:
        failure = _can_bind(family, address)
        if failure is None:
            continue
        if failure.errno == errno.EADDRINUSE:
            spare = next((p for p in range(port + 1, min(port + 50, 65536)) if not _can_bind(family, (host, p))), None)
            other = f", e.g. --port {spare}" if spare else ""
            return (
                f"port {port} on {host} is already in use (another app, or an earlier reasoning-viewer); "
                f"pass --port N to use another{other}"
            )
        if failure.errno == errno.EACCES:
            return f"not allowed to listen on port {port} on {host}; pass --port N with N above 1023"
        return f"cannot listen on {host}:{port} ({failure.strerror or failure}); pass --host or --port to use another"
    return None


def _wait_until_bound(child: subprocess.Popen, host: str, port: int, timeout: float = 120.0) -> bool:
    """Poll until the app accepts connections (True), or it exited or the time is up (False)."""
    target = _LOCAL_NAMES.get(host, host)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with socket.create_connection((target, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _probe_local_servers(out: list) -> None:
    from viewer.discovery import find_local_servers

    out.extend(find_local_servers())


def _endpoint_note(args: argparse.Namespace, found: list | None) -> str | None:
    """What the app is talking to, said on the terminal too (the page says it as well)."""
    if args.demo:
        return "demo mode (--demo): replies come from the built-in replay server's recorded traces."
    if args.base_url:
        return None
    if found is None:
        return None  # the probe is still running: say nothing rather than guess
    if found:
        names = ", ".join(f"{f.name} ({f.base_url})" for f in found)
        return f"using the local server(s) found: {names}."
    return (
        "no model server answered on the usual local ports (Ollama :11434, LM Studio :1234, vLLM :8000, "
        "llama.cpp :8080, SGLang :30000), so the app falls back to its built-in demo server (recorded traces). "
        "Start your server and pass --base-url URL to use a real model."
    )


if __name__ == "__main__":
    sys.exit(main())
