"""`python -m netdicom` is the same as the `netdicom` command."""

from netdicom.cli.app import main

main()
