from kit.serve import run

run("svc_inventory.app:app", "inventory")
