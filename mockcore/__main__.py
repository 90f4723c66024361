"""`python -m mockcore`: the `mockcore` command line."""

from mockcore.cli import main

main()
