"""The API gateway: routes `/api/**` to the services, checks tokens, and streams bytes both ways."""
