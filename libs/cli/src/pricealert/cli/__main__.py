"""`python -m pricealert.cli` is the `pricealert` command."""

from pricealert.cli.main import main

if __name__ == "__main__":
    main()
