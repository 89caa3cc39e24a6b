"""`python -m edge`: the gateway on EDGE_HOST:EDGE_PORT (127.0.0.1:5010)."""

from edge import loader
from kit import logs, settings


def main() -> None:
    loader.use_native()
    # Imported only now: the modules they import must come from the build `use_native` chose.
    from edge.config import load_config
    from edge.server import run

    edge_settings = settings.load("edge")
    logs.setup("edge", edge_settings.log_level)
    run(load_config(edge_settings))


if __name__ == "__main__":
    main()
