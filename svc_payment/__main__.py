from kit.serve import run

run("svc_payment.app:app", "payment")
