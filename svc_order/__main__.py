from kit.serve import run

run("svc_order.app:app", "order")
