"""`python -m contracts`: the `mockcore-contracts` command line."""

from contracts.cli import main

main()
