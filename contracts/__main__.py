"""`python -m contracts`: the `mockcore-contracts` command line."""

from contracts.cli import main

if __name__ == "__main__":  # importing the package's modules (as the independence test does) runs nothing
    main()
