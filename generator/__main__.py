"""`python -m generator`: the `modelatlas` command line."""

from generator.cli import main

if __name__ == "__main__":
    main(prog_name="modelatlas")
