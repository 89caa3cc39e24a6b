"""The API gateway: routes `/api/**` to the services, checks tokens, and streams bytes both ways.

Its hot modules also run compiled by mypyc when whatever starts the edge asks for it (`edge.loader`).
"""
