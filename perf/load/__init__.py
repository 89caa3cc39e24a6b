"""The load suite: locust scenarios run open-loop against a running stack, and the SLO report they feed.

`python -m perf.load` (what `make load` runs) is the one command; perf/README.md says how to read what
it writes. The modules, each one idea: `arrivals` (the open-loop schedule), `timed` (requests timed from
their intended send time), `browse`, `buy`, `staff` (what each kind of visitor does), `users` (the
locust classes), `buyers` (the pool of prepared accounts), `profiles`, `targets`, `cpu`, `report`,
`plots`.
"""
