"""`reasoning-viewer`: start the app, ask one question headless, or serve the demo endpoint.

A thin launcher. `ask` must stay importable without Streamlit (it runs on
servers and in scripts), so Streamlit is only imported by the app itself, in a
child process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

DEFAULT_PORT = 8501


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "ask":
            return _ask(args)
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

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
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
    ask.add_argument("--reasoning-effort", choices=["none", "minimal", "low", "medium", "high"])
    ask.add_argument("--json", action="store_true", help="print one JSON object at the end, nothing while streaming")
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

    demo = sub.add_parser("serve-demo", help="run the OpenAI-compatible replay server on its own")
    demo.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    demo.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    demo.add_argument("--speed", type=float, default=1.0, help="replay speed factor; 0 = no delays")
    demo.add_argument("--fault", help="inject a fault into every reply (see seeds/README.md)")
    return parser


# -- ask ---------------------------------------------------------------------------------


def _ask(args: argparse.Namespace) -> int:
    from viewer.ask import AskPrinter, build_request, result_object
    from viewer.client import ChatClient
    from viewer.errors import ViewerError
    from viewer.models import AssistantTurn, ErrorInfo
    from viewer.turn import TurnOptions, TurnRecorder, run_turn, safe_params

    def refuse(message: str) -> int:
        if args.json:  # the promised object comes even when nothing could be sent
            failed = AssistantTurn(error=ErrorInfo(kind="usage", message=message), status="error")
            sys.stdout.write(json.dumps(result_object(failed), ensure_ascii=False) + "\n")
        return _fail(message)

    if not args.model:
        return refuse("--model is required (list the server's models with GET {base}/models)")
    request = build_request(args)
    try:
        client = ChatClient(
            args.base_url,
            api_key_env=args.api_key_env,
            connect_timeout=args.connect_timeout,
            read_timeout=args.read_timeout,
        )
    except ViewerError as exc:
        return refuse(exc.message)
    recorder = TurnRecorder(
        model=args.model,
        options=TurnOptions(assume_open=args.assume_thinking),
        request_params=safe_params(request),
    )
    printer = None if args.json else AskPrinter(sys.stdout, recorder)
    stop = threading.Event()
    streams: list = []
    previous = signal.getsignal(signal.SIGINT)

    def _interrupt(signum, frame):  # first Ctrl-C: stop streaming now (even mid-silence), keep what came
        stop.set()
        for stream in streams:
            stream.close()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, _interrupt)
    with client:
        run_turn(
            client,
            request,
            recorder=recorder,
            on_events=printer.on_events if printer else None,
            on_stream=streams.append,
            stop=stop,
        )
    turn = recorder.snapshot()
    if printer is not None:
        printer.finish(turn)
    else:
        sys.stdout.write(json.dumps(result_object(turn), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    if turn.error is not None:
        print(f"reasoning-viewer: {turn.error.message}", file=sys.stderr)
        return 1
    if turn.stopped:
        print("reasoning-viewer: stopped; partial reply kept above.", file=sys.stderr)
        return 130
    if turn.reasoning_cut_by_budget:
        print(
            "reasoning-viewer: the token budget ran out while the model was still thinking; raise --max-tokens.",
            file=sys.stderr,
        )
    return 0


def _fail(message: str) -> int:
    print(f"reasoning-viewer: {message}", file=sys.stderr)
    return 2


# -- serve-demo -------------------------------------------------------------------------


def _serve_demo(args: argparse.Namespace) -> int:
    from viewer.replay import serve_forever

    try:
        serve_forever(args.host, args.port, speed=args.speed, fault=args.fault)
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    return 0


# -- the app ----------------------------------------------------------------------------

_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_ALL_INTERFACES = ("0.0.0.0", "::", "")


def allowed_hosts(bind: str) -> list[str]:
    """Host names the app's websocket accepts (Streamlit's `server.allowedHosts`), against DNS rebinding.

    A page on a rebinding domain resolves its own name to 127.0.0.1 and would otherwise talk to the app
    (and read the history) with `Host: evil.example`. Default: the loopback names. `--host NAME` adds the
    bound name; binding all interfaces (0.0.0.0 / ::) adds this machine's host name and addresses, the
    names people use to reach it from the network (issue 11, "DNS rebinding").
    """
    hosts = list(_LOCAL_NAMES)
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
    """Run `streamlit run` on the app with safe defaults; settings travel in the environment."""
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
        "--theme.base",
        "light",
    ]
    print(f"reasoning-viewer: serving on http://{args.host}:{args.port}  (Ctrl-C to quit)", file=sys.stderr)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
