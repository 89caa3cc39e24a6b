"""`python -m edge`: the gateway on EDGE_HOST:EDGE_PORT (127.0.0.1:5010)."""

from edge import loader
from kit import logs, settings


def main() -> None:
    env = settings.Env()
    loader.use_native(env.text("EDGE_NATIVE", "auto"))
    # Imported only now: the modules they import must come from the build `use_native` chose.
    from edge.config import load_config
    from edge.server import run

    config = load_config(env)
    logs.setup("edge", config.log_level)
    run(config)


if __name__ == "__main__":
    main()
