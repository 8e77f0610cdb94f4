"""Man pages and completions are generated from the CLI; they must match it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from netdicom.cli.docgen import ROOT, generated_files


@pytest.mark.parametrize("rel, content", list(generated_files()), ids=lambda v: str(v)[:40])
def test_checked_in_file_matches_cli(rel: Path, content: str) -> None:
    path = ROOT / rel
    assert path.exists(), f"{rel} is missing: run python -m netdicom.cli.docgen"
    assert path.read_text() == content, f"{rel} is stale: run python -m netdicom.cli.docgen"


def test_every_subcommand_has_a_man_page() -> None:
    from netdicom.cli.docgen import _subcommands

    for name, _ in _subcommands():
        assert (ROOT / "man" / f"netdicom-{name}.1").exists()


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff not installed")
def test_man_pages_render_without_warnings() -> None:
    for page in sorted((ROOT / "man").glob("*.1")):
        result = subprocess.run(
            ["groff", "-man", "-Tutf8", "-ww", "-z", str(page)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0
        assert result.stderr == "", f"{page.name}: {result.stderr}"


def test_bash_completion_is_valid_and_lists_subcommands() -> None:
    script = ROOT / "completions" / "netdicom.bash"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    # Drive the completion function as bash would for `netdicom e<TAB>`.
    probe = f'source {script}; COMP_WORDS=(netdicom e); COMP_CWORD=1; _netdicom; echo "${{COMPREPLY[@]}}"'
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["echo"]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("netdicom find --level s", ["series", "study"]),
        ("netdicom get --model ", ["patient", "study"]),
        ("netdicom serve --on-duplicate ", ["keep", "overwrite", "rename"]),
        ("netdicom store --js", ["--json"]),
    ],
)
def test_bash_completion_offers_the_choices_of_an_option(words: str, expected: list[str]) -> None:
    # `--level <TAB>` offered file names in bash (zsh and fish offered the choices).
    script = ROOT / "completions" / "netdicom.bash"
    parts = words.split(" ")
    array = " ".join(f"'{p}'" for p in parts)
    probe = (
        f"source {script}; COMP_WORDS=({array}); COMP_CWORD={len(parts) - 1}; _netdicom; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert sorted(out.stdout.split()) == expected


def test_man_synopsis_has_no_doubled_ellipsis() -> None:
    for page in (ROOT / "man").glob("*.1"):
        assert "......" not in page.read_text(), page.name


def test_man_pages_show_defaults_as_help_does() -> None:
    # "Default: .." (the value "." and a full stop) read as the parent folder for --out.
    page = (ROOT / "man" / "netdicom-get.1").read_text()
    assert "[default: .]" in page and "Default: .." not in page


def test_zsh_completion_completes_paths_and_top_level_options() -> None:
    text = (ROOT / "completions" / "_netdicom").read_text()
    # Path options completed nothing in zsh (an empty action); bash and fish offered files.
    assert "'--dir[" in text and ":folder:_files -/' \\" in text
    assert ":file:_files' \\" in text  # --tls-cert and the like
    assert "compadd -- --version --help -h" in text
    serve = text[text.index("    serve)") : text.index("    store)")]
    assert "'*:file:_files'" not in serve  # serve takes no argument


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_completion_parses() -> None:
    assert subprocess.run(["zsh", "-n", str(ROOT / "completions" / "_netdicom")]).returncode == 0


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")
def test_fish_completion_offers_help_and_folders(tmp_path: Path) -> None:
    script = ROOT / "completions" / "netdicom.fish"
    (tmp_path / "archive").mkdir()

    def complete(line: str) -> list[str]:
        probe = f"source {script}; complete -C '{line}'"
        out = subprocess.run(["fish", "-c", probe], capture_output=True, text=True, check=True)
        return [row.split("\t")[0] for row in out.stdout.splitlines()]

    assert {"-h", "--help", "--version"} <= set(complete("netdicom -"))
    assert complete(f"netdicom serve --dir {tmp_path}/arc") == [f"{tmp_path}/archive/"]


def test_man_pages_show_ranges_and_the_environment_each_command_reads() -> None:
    store = (ROOT / "man" / "netdicom-store.1").read_text()
    assert "[at least 1 and at most 64]" in store  # -j, as --help shows 1<=x<=64
    assert "NETDICOM_PASSWORD" in store.split(".SH ENVIRONMENT")[1]
    serve = (ROOT / "man" / "netdicom-serve.1").read_text()
    # serve takes no PEER and no --username.
    assert "NETDICOM_PEER" not in serve and "NETDICOM_PASSWORD" not in serve
    assert "implementation class UID" in (ROOT / "man" / "netdicom.1").read_text()


def test_zsh_argument_specs_are_well_formed() -> None:
    # serve's block ended in an empty spec '' (where the file positional was dropped): zsh's
    # _arguments failed with "invalid argument" and completed nothing after `netdicom serve`.
    text = (ROOT / "completions" / "_netdicom").read_text()
    blocks = text.split("      _arguments \\\n")[1:]
    assert len(blocks) == 6
    for block in blocks:
        specs = block.split("      ;;")[0].rstrip("\n").split(" \\\n")
        assert all(spec.strip().startswith("'") and spec.strip().endswith("'") for spec in specs)
        assert all(spec.strip() != "''" for spec in specs)
