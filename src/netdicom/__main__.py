"""`python -m netdicom` is the same as the `netdicom` command."""

from netdicom.launch import main

main()
