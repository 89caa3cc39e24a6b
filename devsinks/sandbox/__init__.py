"""The payment sandbox's gateways, one module each over `sessions` (the app is `devsinks.payments`)."""
