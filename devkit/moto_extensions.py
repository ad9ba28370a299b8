"""What the project adds to moto wherever it runs against it (the in-process tests, the benchmarks, and the moto
server of the demo and the end-to-end tests): the endpoint-service connection calls moto lacks
(devkit/moto_privatelink.py) and a TransactWriteItems that backs each table up once (devkit/moto_transactions.py).

`python -m devkit.moto_extensions [moto_server options]` is `moto_server` with both.
"""

from __future__ import annotations

import sys

from devkit import moto_privatelink, moto_transactions


def install() -> None:
    """Idempotent; affects every moto mock and server of this process."""
    moto_privatelink.install()
    moto_transactions.install()


def main(argv: list[str] | None = None) -> None:
    install()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
