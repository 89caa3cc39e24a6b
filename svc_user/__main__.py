from kit.serve import run

run("svc_user.app:app", "user")
