"""The shop's load scenarios for locust: what perf/load/users.py defines, made importable by path.

    .venv/bin/python -m perf.load --profile smoke        # open loop, the report (what `make load` runs)
    PYTHONPATH=. .venv/bin/locust -f perf/locustfile.py --host http://127.0.0.1:5010 Browser Buyer Staff

The second is closed loop, for exploring in locust's web UI (`--tags catalog checkout -- Browser Buyer`
narrows it: tags take every word up to `--`); create the buyer pool first
(`.venv/bin/python -m perf.load.buyers --count 50`).
"""

from perf.load import world  # noqa: F401 (its listeners: options, set-up, samples, progress)
from perf.load.users import Browser, BrowserArrivals, Buyer, BuyerArrivals, Staff, StaffArrivals

__all__ = ["Browser", "BrowserArrivals", "Buyer", "BuyerArrivals", "Staff", "StaffArrivals"]
