"""`python -m runner.emulator`: the same as `batchrun emulator`."""

from __future__ import annotations

import sys

import click

from runner.errors import BatchrunError

from .command import emulator_command


def main() -> None:
    try:
        emulator_command.main(prog_name="python -m runner.emulator", standalone_mode=False)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.Abort:
        sys.exit(130)
    except BatchrunError as err:
        print(f"error: {err.one_line()}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
