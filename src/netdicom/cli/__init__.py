"""The `netdicom` command line (Typer): one module per subcommand."""
