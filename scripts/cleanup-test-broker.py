#!/usr/bin/env python3
"""Removes what earlier test runs left on the local RabbitMQ: vhosts named nctest-*, and agent
users (netcheck-agent-*) that no longer have permissions anywhere."""
import base64
import json
import urllib.parse
import urllib.request

BASE = "http://127.0.0.1:15672/api"
AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def call(method, path):
    req = urllib.request.Request(BASE + path, method=method, headers={"Authorization": AUTH})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
        return json.loads(body) if body else None


def q(name):
    return urllib.parse.quote(name, safe="")


for vhost in call("GET", "/vhosts?columns=name"):
    if vhost["name"].startswith("nctest-"):
        call("DELETE", f"/vhosts/{q(vhost['name'])}")
with_permissions = {p["user"] for p in call("GET", "/permissions")}
for user in call("GET", "/users?columns=name"):
    if user["name"].startswith("netcheck-agent-") and user["name"] not in with_permissions:
        call("DELETE", f"/users/{q(user['name'])}")
