from kit.serve import run

run("svc_product.app:app", "product")
