"""The three payment gateways' protocols, one pure module each (no I/O).

svc_payment signs its requests and verifies the gateways' notifications with these modules; the dev
sandbox (`devsinks.payments`) verifies requests and signs notifications with the very same functions,
so the two sides can never disagree about a signature. `common` holds what they share (HMAC, the
Vietnam clock, whole-VND amounts) and `config` the credentials and endpoints both read at start.
"""

METHODS = ("vnpay", "momo", "zalopay")
WHOLE_VND_ONLY = frozenset({"momo", "zalopay"})  # their amounts are integer VND; VNPay's is VND x 100
