"""containet-tui argument parsing (no app run)."""

from __future__ import annotations

from screens.app import build_parser, serve_command


def test_cli_defaults_to_loopback_and_quotes_the_serve_command() -> None:
    args = build_parser().parse_args(["--serve"])
    assert args.host == "127.0.0.1" and args.port == 8000
    cmd = serve_command(build_parser().parse_args(["--serve", "--real", "--tunrc-dir", "/a b"]))
    assert cmd.endswith("-m screens.app --real --real-host host1 --tunrc-dir '/a b'")
