"""`python -m edge`: the gateway on EDGE_HOST:EDGE_PORT (127.0.0.1:5010)."""

import logging

from edge.config import load_config
from edge.server import run
from kit import settings


def main() -> None:
    edge_settings = settings.load("edge")
    logging.basicConfig(
        level=edge_settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    run(load_config(edge_settings))


if __name__ == "__main__":
    main()
