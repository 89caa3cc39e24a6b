from kit.serve import run

run("svc_notify.app:app", "notify")
