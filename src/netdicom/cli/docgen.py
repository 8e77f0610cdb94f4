"""Man pages and shell completions, generated from the CLI definition itself.

`python -m netdicom.cli.docgen` rewrites man/*.1 and completions/*; a test regenerates them in
memory and fails when the checked-in files differ, so they never fall out of step with --help.
The completion scripts are static (no Python start-up on every Tab press).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import typer.main

from netdicom import __version__
from netdicom.cli.app import app
from netdicom.cli.exit_codes import ExitCode
from netdicom.core.records import frozen

ROOT = Path(__file__).resolve().parents[3]
DATE = "2026"

_EXIT_WORDS = {
    ExitCode.OK: "success",
    ExitCode.FAILED: "the operation failed: a failure status, or part of the work failed",
    ExitCode.USAGE: "usage error",
    ExitCode.BAD_INPUT: "bad or missing input (files, configuration, certificates, a port serve or move --listen cannot listen on)",
    ExitCode.CONNECT: "connection failed (refused, unreachable, TLS)",
    ExitCode.REJECTED: "association rejected, or accepted with no usable presentation context",
    ExitCode.ABORTED: "association aborted, or the peer broke the protocol",
    ExitCode.TIMEOUT: "a timeout expired",
    ExitCode.INTERRUPTED: "interrupted",
    ExitCode.OUTPUT_CLOSED: "standard output closed (its reader exited, as `| head` does): the command stopped",
}

_ENVIRONMENT = (
    ("NETDICOM_CONFIG", "path of the configuration file (named peers)"),
    ("NETDICOM_PEER", "the peer to use when PEER is left out, in any form PEER takes (not serve)"),
    ("NETDICOM_AET", "our (calling) AE title when --aet is not given (not serve)"),
    ("NETDICOM_PASSWORD", "the passcode for --username, instead of --password (not serve)"),
    ("NO_COLOR", "plain output, no colour"),
    ("TCP_NODELAY", "read by dcmtk, not by netdicom: netdicom always sets TCP_NODELAY"),
)


@frozen
class OptionDoc:
    names: tuple[str, ...]
    metavar: str | None  # None for flags
    help: str
    default: str | None
    choices: tuple[str, ...]
    path: str | None = None  # "file", "folder" (only a folder) or None: what completes it
    limits: str | None = None  # the range --help shows, e.g. "1<=x<=64"


# Typer's command objects are click's (vendored by recent Typer versions), used here by duck
# typing so this module does not depend on where click lives.
Command = Any


def _root() -> Command:
    return typer.main.get_command(app)


def _subcommands() -> list[tuple[str, Command]]:
    return sorted(_root().commands.items())


def _options(command: Command) -> list[OptionDoc]:
    docs = []
    for param in command.params:
        if param.param_type_name != "option" or param.hidden:
            continue
        names = tuple(param.opts) + tuple(param.secondary_opts)
        long_name = next((n for n in param.opts if n.startswith("--")), param.opts[0])
        metavar = None if param.is_flag else param.metavar or long_name.lstrip("-").upper()
        default = None
        if not param.is_flag and param.default not in (None, "", ()):
            default = str(param.default)
        choices = tuple(str(c) for c in getattr(param.type, "choices", ()) or ())
        path = None
        if hasattr(param.type, "dir_okay"):  # click's Path type, whatever Typer's version
            # metavar DIR: a folder we check ourselves (cli.common.check_folder), so that a
            # file given there is bad input (exit 3), not click's usage error (exit 2).
            folder = not param.type.file_okay or param.metavar == "DIR"
            path = "folder" if folder else "file"
        low, high = getattr(param.type, "min", None), getattr(param.type, "max", None)
        limits = None
        if low is not None or high is not None:
            limits = " and ".join(
                part
                for part in (
                    None if low is None else f"at least {low:g}",
                    None if high is None else f"at most {high:g}",
                )
                if part
            )
        docs.append(OptionDoc(names, metavar, param.help or "", default, choices, path, limits))
    docs.append(OptionDoc(("-h", "--help"), None, "Show the help and exit.", None, ()))
    return docs


def _arguments(command: Command) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "argument"]


def _usage(name: str, command: Command) -> str:
    parts = [f"netdicom {name}", "[OPTIONS]"]
    for arg in _arguments(command):
        meta = arg.human_readable_name.upper()
        if arg.nargs != 1 and not meta.endswith("..."):  # a metavar may say it already
            meta += "..."
        parts.append(meta if arg.required else f"[{meta}]")
    return " ".join(parts)


# --- man pages (roff, man(7) macros) --------------------------------------------------------


def _roff(text: str) -> str:
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in escaped.splitlines():
        # A line starting with . or ' would be read as a request.
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _examples(command: Command) -> list[str]:
    epilog = command.epilog or ""
    return [line.strip() for line in epilog.splitlines() if line.strip().startswith("netdicom ")]


# What serve keeps in DIR besides the instances, and what an operator may do with it.
_SERVE_FILES: Final = (
    (
        "DIR/.netdicom/index.sqlite",
        "The index C-FIND, C-GET and C-MOVE read (with its -wal and -shm files). Delete it "
        "while serve is down and the next start rebuilds it from the files; one found damaged "
        "is renamed *.damaged (safe to delete) and rebuilt.",
    ),
    (
        "DIR/.netdicom/serve.lock",
        "Held by the serve of this folder while it runs: a second serve on the folder exits 3.",
    ),
    (
        "DIR/.incoming/",
        "Temporary files of transfers in progress (on Linux unnamed: the folder looks empty). "
        "Made again if removed.",
    ),
)
_SERVE_SIGNALS: Final = (
    "SIGTERM, SIGHUP or SIGINT stops accepting at once and lets associations in flight finish "
    "for up to --shutdown-grace seconds, then aborts the rest and exits 0; a second signal "
    "aborts at once. A transfer cut off leaves no file behind. SIGTERM or SIGHUP while the "
    "index is built at start-up stops it (exit 0); what was indexed is kept, the rest is "
    "indexed at the next start."
)


def man_page(name: str | None) -> str:
    """The roff source of netdicom(1) (name None) or netdicom-NAME(1)."""
    root = _root()
    title = "NETDICOM" if name is None else f"NETDICOM-{name.upper()}"
    out = [
        f'.TH {title} 1 "{DATE}" "netdicom {__version__}" "User Commands"',
        ".SH NAME",
    ]
    if name is None:
        out.append(_roff("netdicom - " + (root.help or "").strip().splitlines()[0]))
        out += [".SH SYNOPSIS", _roff("netdicom [--version] [--help] COMMAND [ARGS]...")]
        out += [".SH DESCRIPTION", _roff((root.help or "").strip())]
        out.append(".SH COMMANDS")
        for sub_name, sub in _subcommands():
            out += [".TP", f"\\fB{_roff('netdicom-' + sub_name)}\\fR(1)", _roff(sub.help or "")]
        out += [
            ".SH OPTIONS",
            ".TP",
            "\\fB\\-\\-version\\fR",
            "Print the version and the implementation class UID, and exit.",
            ".TP",
            "\\fB\\-h\\fR, \\fB\\-\\-help\\fR",
            "Show the help and exit.",
        ]
        examples = [ex for _, sub in _subcommands() for ex in _examples(sub)]
    else:
        command = root.commands[name]
        help_text = (command.help or "").strip()
        out.append(_roff(f"netdicom-{name} - {help_text.splitlines()[0] if help_text else ''}"))
        out += [".SH SYNOPSIS", _roff(_usage(name, command))]
        out += [".SH DESCRIPTION", _roff(help_text)]
        arguments = _arguments(command)
        if arguments:
            out.append(".SH ARGUMENTS")
            for arg in arguments:
                out += [".TP", f"\\fB{_roff(arg.human_readable_name.upper())}\\fR"]
                out.append(_roff(getattr(arg, "help", None) or ""))
        out.append(".SH OPTIONS")
        for opt in _options(command):
            names = ", ".join(f"\\fB{_roff(n)}\\fR" for n in opt.names)
            if opt.metavar:
                names += f" \\fI{_roff(opt.metavar)}\\fR"
            text = opt.help
            if opt.choices:
                text += f" One of: {', '.join(opt.choices)}."
            if opt.limits is not None:
                text += f" [{opt.limits}]"
            out += [".TP", names, _roff(text)]
            if opt.default is not None:
                # As --help shows it ("Default: .." read as the parent folder). A long one
                # (the layout) goes on a line of its own: it cannot be broken, and troff
                # could not fill the line before it ("cannot adjust line").
                shown = _roff(f"[default: {opt.default}]")
                out += [".br", shown] if len(opt.default) > 30 else [out.pop() + " " + shown]
        examples = _examples(command)
    if examples:
        out.append(".SH EXAMPLES")
        for example in examples:
            out += [".PP", ".nf", _roff(example), ".fi"]
    out.append(".SH EXIT STATUS")
    for code, words in _EXIT_WORDS.items():
        out += [".TP", f"\\fB{int(code)}\\fR", _roff(words)]
    out += [".SH ENVIRONMENT"]
    for var, words in _ENVIRONMENT:
        if name == "serve" and words.endswith("(not serve)"):
            continue
        out += [".TP", f"\\fB{_roff(var)}\\fR", _roff(words)]
    out += [
        ".SH FILES",
        ".TP",
        "\\fI~/.config/netdicom/config.toml\\fR",
        _roff("Named peers and defaults ($XDG_CONFIG_HOME is respected)."),
    ]
    if name == "serve":
        for path, words in _SERVE_FILES:
            out += [".TP", f"\\fI{_roff(path)}\\fR", _roff(words)]
        out.append(".SH SIGNALS")
        out.append(_roff(_SERVE_SIGNALS))
    out.append(".SH SEE ALSO")
    see = ["netdicom(1)"] if name else []
    see += [f"netdicom-{n}(1)" for n, _ in _subcommands() if n != name]
    out.append(_roff(", ".join([*see, "storescu(1)", "storescp(1)"])))
    return "\n".join(out) + "\n"


# --- completions ----------------------------------------------------------------------------


def _all_option_names(command: Command) -> list[str]:
    return [n for opt in _options(command) for n in opt.names]


def bash_completion() -> str:
    subs = _subcommands()
    cases = []
    for name, command in subs:
        opts = " ".join(_all_option_names(command))
        cases.append(f'        {name}) opts="{opts}" ;;')
    names = " ".join(n for n, _ in subs)
    body = "\n".join(cases)
    # The value of an option with fixed choices (--level, --model, --on-duplicate …).
    value_cases = [
        f'        "{name} {option}") COMPREPLY=( $(compgen -W "{" ".join(opt.choices)}" -- '
        f'"$cur") ); return 0 ;;'
        for name, command in subs
        for opt in _options(command)
        if opt.choices
        for option in opt.names
    ]
    values = "\n".join(value_cases)
    return f"""# bash completion for netdicom (generated by python -m netdicom.cli.docgen; do not edit)
# Install: copy to /etc/bash_completion.d/netdicom, or source it from ~/.bashrc.
_netdicom() {{
    local cur sub opts
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=( $(compgen -W "{names} --version --help" -- "$cur") )
        return 0
    fi
    sub="${{COMP_WORDS[1]}}"
    case "$sub ${{COMP_WORDS[COMP_CWORD-1]}}" in
{values}
    esac
    case "$sub" in
{body}
        *) opts="" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
    else
        COMPREPLY=( $(compgen -f -- "$cur") )
    fi
    return 0
}}
complete -o filenames -F _netdicom netdicom
"""


def _zsh_escape(text: str) -> str:
    return text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def zsh_completion() -> str:
    subs = _subcommands()
    lines = [
        "#compdef netdicom",
        "# zsh completion for netdicom (generated by python -m netdicom.cli.docgen; do not edit)",
        "# Install: copy to a directory on $fpath as _netdicom, then run compinit.",
        "",
        "_netdicom() {",
        "  local -a subcommands",
        "  subcommands=(",
    ]
    for name, command in subs:
        lines.append(f"    '{name}:{_zsh_escape((command.help or '').splitlines()[0])}'")
    lines += [
        "  )",
        "  if (( CURRENT == 2 )); then",
        "    if [[ ${words[2]} == -* ]]; then",
        "      compadd -- --version --help -h",
        "    else",
        "      _describe 'command' subcommands",
        "    fi",
        "    return",
        "  fi",
        "  case ${words[2]} in",
    ]
    for name, command in subs:
        lines.append(f"    {name})")
        lines.append("      _arguments \\")
        specs: list[str] = []
        for opt in _options(command):
            help_text = _zsh_escape(opt.help.splitlines()[0] if opt.help else "")
            arg = ":value:" if opt.metavar else ""
            if opt.choices:
                arg = f":value:({' '.join(opt.choices)})"
            elif opt.path == "folder":
                arg = ":folder:_files -/"
            elif opt.path == "file":
                arg = ":file:_files"
            specs += [f"'{n}[{help_text}]{arg}'" for n in opt.names]
        # Positional arguments (store's files, the keys of find/get/move); serve has none (an
        # empty spec in its place made _arguments fail: "invalid argument").
        if _arguments(command):
            specs.append("'*:file:_files'")
        lines.append(" \\\n".join(f"        {spec}" for spec in specs))
        lines.append("      ;;")
    lines += ["  esac", "}", "", '_netdicom "$@"', ""]
    return "\n".join(lines)


def fish_completion() -> str:
    subs = _subcommands()
    names = " ".join(n for n, _ in subs)
    lines = [
        "# fish completion for netdicom (generated by python -m netdicom.cli.docgen; do not edit)",
        "# Install: copy to ~/.config/fish/completions/netdicom.fish",
        f"complete -c netdicom -n 'not __fish_seen_subcommand_from {names}' -l version "
        "-d 'Print the version'",
        f"complete -c netdicom -n 'not __fish_seen_subcommand_from {names}' -s h -l help "
        "-d 'Show the help'",
    ]
    for name, command in subs:
        desc = (command.help or "").splitlines()[0].replace("'", "\\'")
        lines.append(
            f"complete -c netdicom -f -n 'not __fish_seen_subcommand_from {names}' "
            f"-a {name} -d '{desc}'"
        )
    for name, command in subs:
        for opt in _options(command):
            flags = []
            for n in opt.names:
                flags.append(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}")
            desc = (opt.help.splitlines()[0] if opt.help else "").replace("'", "\\'")
            extra = " -r" if opt.metavar else ""
            if opt.choices:
                extra += f" -f -a '{' '.join(opt.choices)}'"
            lines.append(
                f"complete -c netdicom -n '__fish_seen_subcommand_from {name}' "
                f"{' '.join(flags)}{extra} -d '{desc}'"
            )
    return "\n".join(lines) + "\n"


def generated_files() -> Iterator[tuple[Path, str]]:
    """Every generated file, relative to the repository root, with its content."""
    yield Path("man/netdicom.1"), man_page(None)
    for name, _ in _subcommands():
        yield Path(f"man/netdicom-{name}.1"), man_page(name)
    yield Path("completions/netdicom.bash"), bash_completion()
    yield Path("completions/_netdicom"), zsh_completion()
    yield Path("completions/netdicom.fish"), fish_completion()


def main() -> None:
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1].startswith("-")):
        # `--help` was taken for the folder to write into, and a tree made under ./--help.
        sys.exit("usage: python -m netdicom.cli.docgen [ROOT]  (default: the repository)")
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    wanted = set()
    for rel, content in generated_files():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        wanted.add(path.name)
    for stale in (root / "man").glob("netdicom*.1"):
        if stale.name not in wanted:
            stale.unlink()


if __name__ == "__main__":
    main()
