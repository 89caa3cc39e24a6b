"""The shop as a whole, above its services: the platform's map (`shop.map`) and the tools that walk every
service: `python -m shop.migrate`, `python -m shop.seed` and `python -m shop.stack` (`make run`)."""
