from kit.serve import run

run("svc_auth.app:app", "auth")
