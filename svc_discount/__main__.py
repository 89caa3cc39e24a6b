from kit.serve import run

run("svc_discount.app:app", "discount")
